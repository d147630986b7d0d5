// The deploy/ manifests as a cluster would receive them: every overlay rendered by `kubectl
// kustomize` (Debian's kubectl, package kubernetes-client; FORESIGHT_KUBECTL may list several
// kubectl binaries, comma-separated, e.g. kustomize v2 and v5, and then their renders must agree),
// every object validated against the Kubernetes OpenAPI schemas (kubernetes-models) and checked
// for unknown fields (client-node's models carry the same schema's property lists), then the
// project's own rules: pinned images, probes on paths ObsServer serves, restricted
// securityContext, a config file our schema accepts, the agreed RBAC rule set, NATS config that
// nats-server accepts and whose users are exactly deploy/base/nats/auth.conf.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFile, execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import * as k8s from "@kubernetes/client-node";
import { Registry } from "prom-client";
import { ObsServer } from "../../src/obs/http.ts";
import { validateConfig } from "../../src/config/validate.ts";
import type { ForesightConfig } from "../../src/config/schema.ts";
import { connect } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { NatsServer } from "../../src/nats/server.ts";
import { GrantService } from "../../src/throttle/service.ts";
import { throttleNames } from "../../src/throttle/wire.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const DEPLOY = join(ROOT, "deploy");
const TARGETS = ["base", "overlays/single-node", "overlays/production"] as const;
const KUBECTLS = (process.env.FORESIGHT_KUBECTL ?? "kubectl").split(",").map((s) => s.trim()).filter(Boolean);

/** The allocator's rule set agreed with the actuator's audit test: (apiGroup, resource, verb). */
const AGREED_RULES = [
  ["apps", "deployments", "get"], ["apps", "deployments", "patch"],
  ["apps", "statefulsets", "get"], ["apps", "statefulsets", "patch"],
  ["apps", "deployments/scale", "get"], ["apps", "deployments/scale", "patch"],
  ["apps", "statefulsets/scale", "get"], ["apps", "statefulsets/scale", "patch"],
  ["autoscaling", "horizontalpodautoscalers", "get"], ["autoscaling", "horizontalpodautoscalers", "patch"],
  ["", "pods", "list"],
  ["", "pods/resize", "patch"],
  ["", "events", "create"],
].map((t) => t.join("|")).sort();

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; [k: string]: any };

const renders = new Map<string, string>();

// Render everything at once (each kubectl kustomize takes 1-3 s); errors surface in the tests,
// which call render() again and get the same failure with its message.
test.before(async () => {
  await Promise.all(KUBECTLS.flatMap((k) => TARGETS.map((t) => new Promise<void>((resolve) => {
    execFile(k, ["kustomize", join(DEPLOY, t)], { encoding: "utf8", maxBuffer: 64 << 20 }, (err, stdout) => {
      if (!err) renders.set(`${k} ${t}`, stdout);
      resolve();
    });
  }))));
});
/** Renders a kustomization with one kubectl (once); a missing kubectl fails with the package to install. */
function render(kubectl: string, target: string): string {
  const key = `${kubectl} ${target}`;
  if (!renders.has(key)) renders.set(key, renderUncached(kubectl, target));
  return renders.get(key)!;
}
function renderUncached(kubectl: string, target: string): string {
  const r = spawnSync(kubectl, ["kustomize", join(DEPLOY, target)], { encoding: "utf8" });
  if (r.error && (r.error as NodeJS.ErrnoException).code === "ENOENT") {
    throw new Error(`${kubectl} not found: install Debian's kubectl (apt-get install kubernetes-client) or set FORESIGHT_KUBECTL`);
  }
  if (r.status !== 0) throw new Error(`${kubectl} kustomize ${target} failed:\n${r.stderr}`);
  return r.stdout;
}

function parseObjects(text: string, what: string): Obj[] {
  return parseAllDocuments(text).map((d) => {
    if (d.errors.length) throw new Error(`${what}: YAML error: ${d.errors[0].message}`);
    return d.toJS() as Obj;
  }).filter((o) => o !== null);
}

const rendered = new Map<string, Obj[]>();
function objects(target: string): Obj[] {
  let objs = rendered.get(target);
  if (!objs) {
    objs = parseObjects(render(KUBECTLS[0], target), target);
    rendered.set(target, objs);
  }
  return objs;
}

const idOf = (o: Obj) => `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;
function find(objs: Obj[], kind: string, name: string): Obj {
  const o = objs.find((x) => x.kind === kind && (x.metadata.name === name || (kind === "ConfigMap" && x.metadata.name.startsWith(name + "-"))));
  assert.ok(o, `no ${kind} ${name} in the render`);
  return o!;
}

/** Pod template specs of workloads (Deployment, StatefulSet, Job). */
function podSpecs(objs: Obj[]): { owner: string; spec: any }[] {
  return objs.filter((o) => ["Deployment", "StatefulSet", "Job"].includes(o.kind)).map((o) => ({ owner: idOf(o), spec: o.spec.template.spec }));
}

// ---------------------------------------------------------------------------------------------
// Unknown-field check: kubernetes-models validates types and required fields but lets unknown
// keys through (a typo such as `readOnlyRootFilesytem` would be silently dropped by the server or
// rejected by strict field validation). client-node's generated models list every property of
// every type of the same OpenAPI document, so walk the object against them.

const models = k8s as unknown as Record<string, { getAttributeTypeMap?: () => { baseName: string; type: string }[] }>;
function unknownFields(value: unknown, type: string, path: string, out: string[]): void {
  if (value === null || value === undefined) return;
  const arr = /^Array<(.+)>$/.exec(type);
  if (arr) {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFields(v, arr[1], `${path}[${i}]`, out));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    for (const [k, v] of Object.entries(value as object)) unknownFields(v, map[1], `${path}.${k}`, out);
    return;
  }
  const model = models[type];
  if (!model?.getAttributeTypeMap || typeof value !== "object") return; // primitives, IntOrString, Quantity, object
  const attrs = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value as object)) {
    const t = attrs.get(k);
    if (t === undefined) out.push(`${path}.${k} (not a field of ${type})`);
    else unknownFields(v, t, `${path}.${k}`, out);
  }
}

/** Validates one object with kubernetes-models (by apiVersion and kind) and the unknown-field walk. */
async function validateObject(o: Obj): Promise<string[]> {
  const [group, version] = o.apiVersion.includes("/") ? o.apiVersion.split("/") : ["", o.apiVersion];
  const mod = (await import(`kubernetes-models/${group ? group + "/" : ""}${version}`)) as Record<string, new (d: unknown) => { validate(): void }>;
  const Model = mod[o.kind];
  if (!Model) return [`${idOf(o)}: kubernetes-models has no ${o.apiVersion} ${o.kind}`];
  const errors: string[] = [];
  try {
    new Model(o).validate();
  } catch (err) {
    errors.push(`${idOf(o)}: ${(err as Error).message}`);
  }
  const unknown: string[] = [];
  const rootType = `${version[0].toUpperCase()}${version.slice(1)}${o.kind}`;
  if (!models[rootType]?.getAttributeTypeMap) errors.push(`${idOf(o)}: client-node has no model ${rootType}`);
  else unknownFields(o, rootType, idOf(o), unknown);
  return errors.concat(unknown.map((u) => `unknown field ${u}`));
}

// ---------------------------------------------------------------------------------------------

test("every overlay renders; with several kubectls (old and new kustomize) the renders agree", () => {
  for (const target of TARGETS) {
    const byKubectl = KUBECTLS.map((k) => {
      // ConfigMap name suffixes are content hashes whose algorithm differs between kustomize versions.
      const text = render(k, target).replace(/\b(foresight-config|nats-config)-[a-z0-9]{10}\b/g, "$1-HASH");
      const objs = parseObjects(text, `${k} ${target}`);
      // kustomize v2 leaves empty `labels: {}` / `annotations: {}` on replaced ConfigMaps: same object.
      for (const o of objs) for (const f of ["labels", "annotations"] as const) if (o.metadata[f] && !Object.keys(o.metadata[f]!).length) delete o.metadata[f];
      return new Map(objs.map((o) => [idOf(o), o]));
    });
    assert.ok(byKubectl[0].size > 10, `${target}: ${byKubectl[0].size} objects rendered`);
    for (let i = 1; i < byKubectl.length; i++) {
      assert.equal([...byKubectl[i].keys()].sort(), [...byKubectl[0].keys()].sort(), `${target}: ${KUBECTLS[i]} renders other objects than ${KUBECTLS[0]}`);
      for (const [id, o] of byKubectl[0]) assert.equal(byKubectl[i].get(id), o, `${target}: ${id} differs between ${KUBECTLS[0]} and ${KUBECTLS[i]}`);
    }
  }
});

test("every object is valid against the Kubernetes OpenAPI schemas, with no unknown field", async () => {
  for (const target of TARGETS) {
    const errors: string[] = [];
    for (const o of objects(target)) errors.push(...(await validateObject(o)));
    assert.equal(errors, [], `${target}:\n${errors.join("\n")}`);
  }
  // The check can fail: a typo'd field and a wrong type are reported.
  const bad = structuredClone(find(objects("base"), "Deployment", "foresight-processor"));
  bad.spec.template.spec.containers[0].securityContext.readOnlyRootFilesytem = true;
  bad.spec.replicas = "3";
  const errs = await validateObject(bad);
  assert.ok(errs.some((e) => e.includes("readOnlyRootFilesytem")), errs.join("\n"));
  assert.ok(errs.some((e) => e.includes("replicas must be integer")), errs.join("\n"));
});

test("every image is pinned to an exact version or digest (never latest)", () => {
  const pinned = /^[a-z0-9./-]+(:[0-9]+\.[0-9]+\.[0-9]+[A-Za-z0-9._-]*)?(@sha256:[0-9a-f]{64})?$/;
  for (const target of TARGETS) {
    for (const { owner, spec } of podSpecs(objects(target))) {
      for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
        const image: string = c.image;
        assert.ok(pinned.test(image) && (image.includes(":") || image.includes("@sha256:")), `${target} ${owner}/${c.name}: image ${image} is not pinned`);
        assert.not.ok(/:latest\b/.test(image), `${target} ${owner}: ${image}`);
      }
    }
  }
});

test("restricted securityContext, resource requests and no Kubernetes token where none is needed", () => {
  for (const target of TARGETS) {
    const objs = objects(target);
    for (const { owner, spec } of podSpecs(objs)) {
      const where = `${target} ${owner}`;
      assert.is(spec.securityContext?.runAsNonRoot, true, `${where}: runAsNonRoot`);
      assert.is(spec.securityContext?.seccompProfile?.type, "RuntimeDefault", `${where}: seccomp`);
      assert.ok(spec.securityContext?.runAsUser > 0, `${where}: numeric non-root runAsUser`);
      for (const c of spec.containers) {
        const sc = c.securityContext ?? {};
        assert.is(sc.readOnlyRootFilesystem, true, `${where}/${c.name}: readOnlyRootFilesystem`);
        assert.is(sc.allowPrivilegeEscalation, false, `${where}/${c.name}: allowPrivilegeEscalation`);
        assert.ok(sc.capabilities?.drop?.includes("ALL"), `${where}/${c.name}: drop ALL capabilities`);
        assert.ok(c.resources?.requests?.cpu && c.resources?.requests?.memory, `${where}/${c.name}: cpu and memory requests`);
        assert.ok(c.resources?.limits?.memory, `${where}/${c.name}: memory limit`);
      }
      const sa = find(objs, "ServiceAccount", spec.serviceAccountName);
      const wantsToken = spec.serviceAccountName === "foresight-allocator";
      assert.is(spec.automountServiceAccountToken, wantsToken, `${where}: automountServiceAccountToken`);
      assert.is(sa.automountServiceAccountToken, wantsToken, `${target} ServiceAccount ${sa.metadata.name}: automountServiceAccountToken`);
    }
  }
});

test("probes point at paths our HTTP server serves, on the port the config gives it", async () => {
  // A real ObsServer (src/obs/http.ts) answers for the paths; 404 would mean a probe on nothing.
  const server = new ObsServer({ port: 0, host: "127.0.0.1", registry: new Registry(), health: () => ({ ok: true, checks: {} }), ready: () => ({ ok: true, checks: {} }) });
  await server.start();
  try {
    for (const target of TARGETS) {
      const objs = objects(target);
      const config = foresightConfig(objs);
      for (const name of ["foresight-processor", "foresight-allocator", "foresight-rls"]) {
        const c = find(objs, "Deployment", name).spec.template.spec.containers[0];
        const probes = ["startupProbe", "livenessProbe", "readinessProbe"].filter((p) => c[p]);
        assert.ok(c.livenessProbe && c.readinessProbe, `${target} ${name}: liveness and readiness probes`);
        assert.is(c.readinessProbe.httpGet.path, "/readyz", `${target} ${name}: readiness on /readyz`);
        assert.is(c.livenessProbe.httpGet.path, "/healthz", `${target} ${name}: liveness on /healthz`);
        for (const p of probes) {
          const { path, port } = c[p].httpGet;
          const portNumber = typeof port === "number" ? port : c.ports.find((x: any) => x.name === port)?.containerPort;
          assert.is(portNumber, config.http.metricsPort, `${target} ${name} ${p}: port ${port} must be http.metricsPort`);
          const res = await fetch(`http://127.0.0.1:${server.port}${path}`);
          assert.is(res.status, 200, `${target} ${name} ${p}: GET ${path} answered ${res.status}`);
        }
      }
      // NATS: the monitoring port nats.conf opens, on nats-server's /healthz.
      const nats = find(objs, "StatefulSet", "nats").spec.template.spec.containers[0];
      const monitor = nats.ports.find((p: any) => p.name === "monitor").containerPort;
      assert.match(natsFiles(objs)["nats.conf"], new RegExp(`^http: 0\\.0\\.0\\.0:${monitor}$`, "m"));
      for (const p of ["startupProbe", "livenessProbe", "readinessProbe"]) {
        assert.match(nats[p].httpGet.path, /^\/healthz(\?|$)/, `${target} nats ${p}`);
        assert.is(nats[p].httpGet.port, "monitor");
      }
    }
    // The server really distinguishes paths (so the 200s above mean something).
    assert.is((await fetch(`http://127.0.0.1:${server.port}/ready`)).status, 404);
  } finally {
    await server.stop();
  }
});

function foresightConfig(objs: Obj[]): ForesightConfig {
  const cm = find(objs, "ConfigMap", "foresight-config");
  return validateConfig(parseYaml(cm.data["foresight.yaml"]), `ConfigMap ${cm.metadata.name}`);
}
function natsFiles(objs: Obj[]): Record<string, string> {
  return find(objs, "ConfigMap", "nats-config").data;
}

test("the config file passes our schema and agrees with the workloads (ports, replicas, TLS)", () => {
  for (const target of TARGETS) {
    const objs = objects(target);
    const config = foresightConfig(objs);
    const natsNodes = find(objs, "StatefulSet", "nats").spec.replicas;
    assert.is(config.nats.replicas, natsNodes, `${target}: nats.replicas (stream/bucket replicas) must equal the NATS node count`);
    const routes = (natsFiles(objs)["cluster.conf"].match(/nats:\/\/nats-\d+\.nats-headless:6222/g) ?? []).length;
    assert.is(routes, natsNodes === 1 ? 0 : natsNodes, `${target}: one route per NATS node`);
    const proc = find(objs, "Deployment", "foresight-processor").spec.template.spec.containers[0];
    assert.ok(proc.ports.some((p: any) => p.name === "http-metrics" && p.containerPort === config.http.metricsPort), `${target}: metrics port`);
    assert.equal(find(objs, "Service", "foresight-processor").spec.ports.map((p: any) => p.port), [config.http.metricsPort], `${target}: processor Service ports`);
    const rls = find(objs, "Deployment", "foresight-rls").spec.template.spec.containers[0];
    assert.equal(rls.args.slice(0, 1), ["rls"], `${target}: the RLS runs \`foresight rls\``);
    assert.ok(rls.ports.some((p: any) => p.name === "grpc-rls" && p.containerPort === config.envoy.grpcPort), `${target}: RLS gRPC port = envoy.grpcPort`);
    assert.equal(find(objs, "Service", "foresight-rls").spec.ports.map((p: any) => p.port).sort(), [config.envoy.grpcPort, config.http.metricsPort].sort(), `${target}: RLS Service ports`);
    // Every pool's namespace has the allocator's rules bound there.
    for (const pool of config.pools) {
      assert.ok(
        objs.some((o) => o.kind === "RoleBinding" && o.metadata.namespace === pool.workload.namespace && o.roleRef.name === "foresight-allocator"),
        `${target}: pool ${pool.name} lives in ${pool.workload.namespace}, where the allocator has no RoleBinding`,
      );
    }
    const tls = /^\s*tls\s*\{/m.test(natsFiles(objs)["tls.conf"]);
    assert.is(tls, config.nats.connection.tls !== undefined, `${target}: clients use TLS exactly when the server requires it`);
    if (config.nats.connection.tls?.caFile) {
      // Every pod that connects to NATS (has a NATS user) needs the CA.
      for (const { owner, spec } of podSpecs(objs).filter((p) => p.spec.containers[0].env?.some((e: any) => e.name === "FORESIGHT_NATS_USER"))) {
        const mounts: any[] = spec.containers[0].volumeMounts ?? [];
        assert.ok(mounts.some((m) => config.nats.connection.tls!.caFile!.startsWith(m.mountPath + "/")), `${target} ${owner}: ${config.nats.connection.tls.caFile} is not mounted`);
      }
    }
  }
  assert.is(foresightConfig(objects("overlays/production")).nats.replicas, 3, "production streams are R3");
  const prod = objects("overlays/production");
  assert.is(find(prod, "Deployment", "foresight-processor").spec.replicas, 3);
  assert.is(find(prod, "Deployment", "foresight-allocator").spec.replicas, 2);
  const single = objects("overlays/single-node");
  assert.is(find(single, "StatefulSet", "nats").spec.replicas, 1);
  assert.is(find(single, "Deployment", "foresight-processor").spec.replicas, 1);
});

test("RBAC: the allocator's ClusterRole is exactly the agreed rule set, bound only by RoleBindings", () => {
  for (const target of TARGETS) {
    const objs = objects(target);
    const roles = objs.filter((o) => o.kind === "Role" || o.kind === "ClusterRole");
    assert.equal(roles.map(idOf), ["ClusterRole//foresight-allocator"], `${target}: the only role is the allocator's`);
    const triples = roles[0].rules.flatMap((r: any) => r.apiGroups.flatMap((g: string) => r.resources.flatMap((res: string) => r.verbs.map((v: string) => `${g}|${res}|${v}`))));
    assert.equal([...new Set(triples)].sort(), AGREED_RULES, `${target}: allocator rules`);
    assert.not.ok(roles[0].rules.some((r: any) => r.resourceNames || r.nonResourceURLs), "no extra rule forms");
    assert.not.ok(objs.some((o) => o.kind === "ClusterRoleBinding"), `${target}: no ClusterRoleBinding (rights only where a RoleBinding grants them)`);
    for (const b of objs.filter((o) => o.kind === "RoleBinding")) {
      assert.equal(b.roleRef, { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "foresight-allocator" }, idOf(b));
      assert.equal(b.subjects, [{ kind: "ServiceAccount", name: "foresight-allocator", namespace: "foresight" }], idOf(b));
    }
  }
  // The file the actuator's audit test reads holds the same rules.
  const fromFile = parseAllDocuments(readFileSync(join(DEPLOY, "base/rbac.yaml"), "utf8")).map((d) => d.toJS()).find((o) => o?.kind === "ClusterRole");
  assert.equal(fromFile.rules, objects("base").find((o) => o.kind === "ClusterRole")!.rules);
});

test("each Foresight pod connects as its own NATS user with that user's password from the Secret", () => {
  const want: Record<string, string> = { "foresight-processor": "processor", "foresight-allocator": "allocator", "foresight-config-init": "config" };
  for (const target of TARGETS) {
    const objs = objects(target);
    const keys = new Set<string>();
    for (const { owner, spec } of podSpecs(objs)) {
      for (const c of spec.containers) {
        for (const e of c.env ?? []) if (e.valueFrom?.secretKeyRef) {
          assert.is(e.valueFrom.secretKeyRef.name, "foresight-nats-auth", `${target} ${owner} ${e.name}`);
          keys.add(e.valueFrom.secretKeyRef.key);
        }
      }
      const name = owner.split("/")[2];
      if (!(name in want)) continue;
      const env = new Map<string, any>(spec.containers[0].env.map((e: any) => [e.name, e]));
      assert.is(env.get("FORESIGHT_NATS_USER")?.value, want[name], `${target} ${owner}: NATS user`);
      assert.is(env.get("FORESIGHT_NATS_PASS")?.valueFrom?.secretKeyRef?.key, `${want[name]}-password`, `${target} ${owner}: the password of its own user`);
    }
    assert.equal([...keys].sort(), ["allocator-password", "config-password", "gateway-password", "processor-password"], `${target}: Secret keys used`);
  }
});

test("PodDisruptionBudgets, Services and NetworkPolicies cover every workload", () => {
  for (const target of TARGETS) {
    const objs = objects(target);
    for (const [kind, name] of [["Deployment", "foresight-processor"], ["Deployment", "foresight-allocator"], ["Deployment", "foresight-rls"], ["StatefulSet", "nats"]]) {
      const w = find(objs, kind, name);
      const labels = w.spec.template.metadata.labels;
      const matches = (sel: Record<string, string> | undefined) => !!sel && Object.entries(sel).every(([k, v]) => labels[k] === v);
      assert.ok(objs.some((o) => o.kind === "PodDisruptionBudget" && matches(o.spec.selector.matchLabels)), `${target}: no PDB for ${name}`);
      assert.ok(objs.some((o) => o.kind === "Service" && matches(o.spec.selector)), `${target}: no Service for ${name}`);
      assert.ok(objs.some((o) => o.kind === "NetworkPolicy" && matches(o.spec.podSelector.matchLabels) && o.spec.ingress?.length), `${target}: no ingress policy for ${name}`);
    }
    assert.ok(objs.some((o) => o.kind === "NetworkPolicy" && Object.keys(o.spec.podSelector).length === 0 && !o.spec.ingress), `${target}: default deny`);
  }
});

test("NATS: nats-server accepts every overlay's config; its users are exactly deploy/base/nats/auth.conf", () => {
  const dir = mkdtempSync(join(tmpdir(), "foresight-natsconf-"));
  try {
    // Certificates for the production overlay's tls blocks (paths rewritten to the temp dir).
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=nats", "-addext", "subjectAltName=DNS:nats", "-keyout", join(dir, "tls.key"), "-out", join(dir, "tls.crt")], { stdio: "pipe" });
    writeFileSync(join(dir, "ca.crt"), readFileSync(join(dir, "tls.crt")));
    const authFile = readFileSync(join(DEPLOY, "base/nats/auth.conf"), "utf8");
    const passVars = [...authFile.matchAll(/password:\s*\$(\w+)/g)].map((m) => m[1]).sort();
    assert.equal(passVars, ["FORESIGHT_NATS_ALLOCATOR_PASS", "FORESIGHT_NATS_CONFIG_PASS", "FORESIGHT_NATS_GATEWAY_PASS", "FORESIGHT_NATS_PROCESSOR_PASS"]);
    for (const target of TARGETS) {
      const objs = objects(target);
      const files = natsFiles(objs);
      assert.is(files["auth.conf"], authFile, `${target}: the deployed auth.conf is the one test/deploy/nats-roles.test.ts runs`);
      const sub = join(dir, target.replace(/\//g, "_"));
      mkdirSync(sub);
      for (const [name, text] of Object.entries(files)) {
        writeFileSync(join(sub, name), text.replaceAll("/etc/nats-tls/", dir + "/").replace("/data/jetstream", join(sub, "js")).replace("/var/run/nats/", sub + "/"));
      }
      // The server's environment as the StatefulSet gives it: every password variable from the Secret.
      const c = find(objs, "StatefulSet", "nats").spec.template.spec.containers[0];
      const envNames = c.env.map((e: any) => e.name);
      for (const v of passVars) assert.ok(envNames.includes(v), `${target}: nats container lacks env ${v}`);
      const env: Record<string, string> = { ...process.env, POD_NAME: "nats-0" } as Record<string, string>;
      for (const v of passVars) env[v] = "x";
      assert.is([...c.command, ...c.args].join(" "), "/nats-server --config /etc/nats-config/nats.conf");
      const r = spawnSync(process.env.NATS_SERVER ?? "nats-server", ["-c", join(sub, "nats.conf"), "-t"], { encoding: "utf8", env });
      assert.is(r.status, 0, `${target}: nats-server -t refused the config: ${r.stderr}${r.stdout}`);
      // The mount path of the config matches the args.
      assert.ok(c.volumeMounts.some((m: any) => m.mountPath === "/etc/nats-config"), target);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("NATS: in every overlay the allocator (which runs the grant service) may publish grants; the processor may not", async () => {
  for (const target of TARGETS) {
    const objs = objects(target);
    const alloc = find(objs, "Deployment", "foresight-allocator").spec.template.spec.containers[0];
    assert.ok(!alloc.args.includes("--no-grants"), `${target}: the deployed allocator must run the grant service`);
    const config = foresightConfig(objs);
    const names = throttleNames(config.nats.subjectPrefix, config.throttle.exceedanceSubject);
    // A real nats-server with the overlay's rendered authorization block (no TLS: only the rights).
    const env: Record<string, string> = {};
    for (const r of ["GATEWAY", "PROCESSOR", "ALLOCATOR", "CONFIG"]) env[`FORESIGHT_NATS_${r}_PASS`] = `pw-${r}`;
    const srv = await NatsServer.start({ env, extraConfig: natsFiles(objs)["auth.conf"] });
    try {
      const as = (user: string) => connect({ servers: srv.url, user, pass: `pw-${user.toUpperCase()}`, maxReconnectAttempts: 0 });
      const anc = await as("allocator");
      try {
        // What GrantService.start and its publications do: the stream, a grant, the subscriptions.
        await GrantService.ensureStream(anc, names);
        const ack = await jetstream(anc).publish(names.deltaSubject(0, "manifests-1"), new Uint8Array(40));
        assert.is(ack.stream, names.grantsStream, `${target}: allocator publishes grants`);
        for (const subject of [`${config.nats.subjectPrefix}.forecasts.*`, names.demandWildcard]) {
          const sub = anc.subscribe(subject);
          // The server answers a refused SUB with -ERR before the flush's PONG: closed by then.
          await anc.flush();
          assert.not.ok(sub.isClosed(), `${target}: allocator may subscribe to ${subject}`);
          sub.unsubscribe();
        }
      } finally {
        await anc.close();
      }
      const pnc = await as("processor");
      try {
        const refused = await jetstream(pnc).publish(names.deltaSubject(0, "forged"), new Uint8Array(40)).then(() => "published", (e: Error) => e.message);
        assert.match(refused, /Permissions Violation for Publish/, `${target}: the processor must not publish grants`);
      } finally {
        await pnc.close();
      }
    } finally {
      await srv.dispose();
    }
  }
});

test("Dockerfile: pinned base images, non-root user, entrypoint node dist/cli.js", () => {
  const text = readFileSync(join(ROOT, "Dockerfile"), "utf8");
  const froms = [...text.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]);
  assert.ok(froms.length >= 2, "multi-stage");
  for (const f of froms) {
    assert.match(f, /^node:20\.\d+\.\d+-bookworm-slim(@sha256:[0-9a-f]{64})?$/, `base image ${f} must be an exact node 20 bookworm-slim release`);
  }
  assert.match(text, /^RUN npm ci\b/m);
  assert.match(text, /npm run build/);
  assert.match(text, /npm prune --omit=dev/);
  const user = [...text.matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]).pop();
  assert.ok(user && /^[1-9]\d*(:\d+)?$/.test(user), `USER must be a numeric non-root uid, got ${user}`);
  assert.match(text, /^ENTRYPOINT \["node", "dist\/cli\.js"\]$/m);
  // The image's uid is the one the manifests run as.
  for (const { owner, spec } of podSpecs(objects("base")).filter((p) => !p.owner.includes("StatefulSet/"))) {
    assert.is(String(spec.securityContext.runAsUser), user!.split(":")[0], `${owner}: runAsUser`);
  }
});

test("the image's runtime files run the CLI: `foresight config validate` accepts the production config", () => {
  const cli = join(ROOT, "dist/cli.js");
  assert.ok(existsSync(cli), "dist/cli.js missing: run `npm run build` first (npm test does)");
  const docker = readFileSync(join(ROOT, "Dockerfile"), "utf8");
  const runtime = docker.slice(docker.lastIndexOf("\nFROM "));
  const copies = [...runtime.matchAll(/^COPY --from=build \/app\/(\S+) \.\/(\S+)$/gm)].map((m) => [m[1], m[2]]);
  assert.equal(copies.map((c) => c[0]).sort(), ["build/engine.wasm", "dist", "node_modules", "package.json"]);
  // The CLI bundle (what the entrypoint dist/cli.js runs) keeps packages external: each must be
  // a production dependency, or `npm prune --omit=dev` leaves the image without it.
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { dependencies: Record<string, string> };
  for (const bundle of ["dist/main.js"]) {
    const text = readFileSync(join(ROOT, bundle), "utf8");
    const specifiers = new Set([...text.matchAll(/(?:^import\s[^;]*?from\s*|^export\s[^;]*?from\s*|\bimport\()\s*"([^"]+)"/gm)].map((m) => m[1]));
    assert.ok(specifiers.size > 3, `${bundle}: imports found`);
    for (const spec of specifiers) {
      if (spec.startsWith("node:") || spec.startsWith(".")) continue;
      const name = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0];
      assert.ok(name in pkg.dependencies, `${bundle} imports ${spec}, which is not in package.json dependencies (npm prune --omit=dev drops it)`);
    }
  }
  // Lay the runtime stage's files out as the image has them (node_modules linked) and run it.
  const app = mkdtempSync(join(tmpdir(), "foresight-image-"));
  try {
    for (const [from, to] of copies) {
      mkdirSync(dirname(join(app, to)), { recursive: true });
      if (from === "node_modules") symlinkSync(join(ROOT, from), join(app, to));
      else cpSync(join(ROOT, from), join(app, to), { recursive: true });
    }
    // The production config here (every overlay's config went through the schema above).
    for (const target of ["overlays/production"]) {
      const file = join(app, `${target.replace(/\//g, "_")}.yaml`);
      writeFileSync(file, find(objects(target), "ConfigMap", "foresight-config").data["foresight.yaml"]);
      const r = spawnSync(process.execPath, [join(app, "dist/cli.js"), "config", "validate", file], { encoding: "utf8", cwd: app });
      assert.is(r.status, 0, `${target}: foresight config validate failed: ${r.stderr}`);
    }
    // And it refuses a broken one (exit 2, naming the field).
    const bad = join(app, "bad.yaml");
    writeFileSync(bad, "nats:\n  replicas: 2\n");
    const r = spawnSync(process.execPath, [join(app, "dist/cli.js"), "config", "validate", bad], { encoding: "utf8", cwd: app });
    assert.is(r.status, 2, r.stderr);
    assert.match(r.stderr, /nats\.replicas/);
  } finally {
    rmSync(app, { recursive: true, force: true });
  }
});

test("examples: HPA on the External forecast metric (with the adapter rule) and a KEDA ScaledObject", async () => {
  const hpaDocs = parseObjects(readFileSync(join(DEPLOY, "examples/hpa-external-metrics.yaml"), "utf8"), "hpa example");
  const errors: string[] = [];
  for (const o of hpaDocs) errors.push(...(await validateObject(o)));
  assert.equal(errors, [], errors.join("\n"));
  const hpa = hpaDocs.find((o) => o.kind === "HorizontalPodAutoscaler")!;
  assert.is(hpa.apiVersion, "autoscaling/v2");
  const ext = hpa.spec.metrics.find((m: any) => m.type === "External").external;
  assert.is(ext.metric.name, "foresight_pool_forecast_upper_requests_per_second");
  assert.ok(ext.metric.selector.matchLabels.pool, "selects one pool");
  assert.ok(hpa.spec.metrics.some((m: any) => m.type === "Resource"), "keeps a reactive metric");
  const adapter = parseYaml(hpaDocs.find((o) => o.kind === "ConfigMap")!.data["config.yaml"]);
  const rule = adapter.externalRules.find((r: any) => r.name.as === ext.metric.name);
  assert.ok(rule, "the adapter exposes the metric the HPA asks for");
  assert.match(rule.seriesQuery, /^foresight_pool_forecast_upper_requests_per_second\{/);
  assert.match(rule.metricsQuery, /<<\.Series>>\{<<\.LabelMatchers>>\}/);

  const [so] = parseObjects(readFileSync(join(DEPLOY, "examples/keda-scaledobject.yaml"), "utf8"), "keda example");
  assert.is(so.apiVersion, "keda.sh/v1alpha1");
  assert.is(so.kind, "ScaledObject");
  assert.is(so.spec.scaleTargetRef.name, hpa.spec.scaleTargetRef.name);
  const prom = so.spec.triggers.find((t: any) => t.type === "prometheus");
  assert.match(prom.metadata.query, /foresight_pool_forecast_upper_requests_per_second\{pool="[a-z0-9-]+"\}/);
  assert.match(prom.metadata.serverAddress, /^https?:\/\//);
  // KEDA trigger metadata values are strings.
  for (const t of so.spec.triggers) for (const [k, v] of Object.entries(t.metadata)) assert.type(v, "string", `trigger ${t.type} ${k}`);
  assert.ok(Number(prom.metadata.threshold) > 0);
});

test.run();
