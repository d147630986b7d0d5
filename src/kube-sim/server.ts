// A Kubernetes API test server over node:http, for the parts of the API Foresight uses: GET/PATCH
// of apps/v1 Deployments and StatefulSets (and their `scale` subresource, GET/PATCH/PUT),
// autoscaling/v2 HorizontalPodAutoscalers, core/v1 Pods (list by label selector, the `resize`
// subresource) and Events (core/v1 and events.k8s.io/v1, POST). Semantics as the API documents them:
// merge, strategic-merge, JSON and apply patches; server-side apply with managedFields per field
// manager, conflicts (409 naming the owner) and `force`; `fieldManager`, `force`, `dryRun=All`;
// resourceVersion preconditions (409); Status bodies with the real reasons, codes and message
// forms; RBAC by a table (403); 429/5xx with Retry-After by fault injection; an audit log.
// There is no kube-apiserver on these machines; this is the stand-in, driven by the real client.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { randomUUID } from "node:crypto";
import { parse as parseYaml } from "yaml";
import {
  applyConflict, badRequest, forbidden, invalid, methodNotAllowed, notFound, pathNotFound, resourceVersionConflict,
  serverError, StatusError, tooManyRequests, unauthorized, unsupportedMediaType, type FieldConflict,
} from "./status.ts";
import {
  changedPaths, clone, deepEqual, deletePath, getPath, isObject, keyPath, leafPaths, mergePatch, parseQuantity, pathKey,
  pathString, strategicMerge, toFieldsV1, type FieldPath, type Json, type JsonObject,
} from "./fields.ts";

/** One RBAC policy rule (rbac.authorization.k8s.io/v1 PolicyRule; `resources` may name subresources as `deployments/scale`). */
export interface RbacRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/** Who may do what: bearer tokens to user names, and the rules bound to each user (a Role in every namespace, or only in `namespaces`). */
export interface RbacTable {
  /** Bearer token → user name (e.g. `system:serviceaccount:foresight:allocator`). */
  tokens: Record<string, string>;
  /** User name → rules. */
  rules: Record<string, { namespaces?: string[]; rules: RbacRule[] }>;
}

/** One request as the audit log records it (the API server's audit event, reduced). */
export interface AuditEntry {
  verb: string;
  /** API group ("" for core). */
  group: string;
  resource: string;
  /** "" when none. */
  subresource: string;
  namespace: string;
  /** "" for collection requests. */
  name: string;
  user: string;
  /** HTTP status answered. */
  code: number;
  contentType: string;
  fieldManager: string;
  dryRun: boolean;
  timeMs: number;
}

/** Which requests a fault applies to (unset = any). */
export interface FaultMatch {
  verb?: string;
  resource?: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

/** A fault injected into matching requests, for tests. */
export interface Fault {
  match?: FaultMatch;
  /** How many matching requests it affects. Default 1; Infinity = until cleared. */
  times?: number;
  /** Waits this long before handling, ms. */
  delayMs?: number;
  /** Runs before the request is handled (e.g. another writer changes the object: a resourceVersion race). */
  before?: (sim: KubeSim) => void;
  /** Answers with this instead of handling: 429 or a 5xx, with an optional Retry-After (s). */
  respond?: { code: 429 | 500 | 503 | 504; retryAfterSec?: number };
}

/** An accepted write (not dry-run), with the time it became visible. */
export interface WriteRecord {
  verb: string;
  group: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
  /** The object after the write (for scale: the parent object). */
  object: KubeObject;
  timeMs: number;
}

export interface KubeSimOptions {
  /** Bind address. Default 127.0.0.1. */
  host?: string;
  /** Port; 0 = a free port. Default 0. */
  port?: number;
  /** RBAC table; absent = every request is allowed (as user `system:admin`). */
  rbac?: RbacTable;
  /** Keeps pods of Deployments/StatefulSets in line with spec.replicas (named `<workload>-<i>`). Default true. */
  managePods?: boolean;
  /** Called after every accepted write. */
  onWrite?: (w: WriteRecord) => void;
}

interface ManagerEntry {
  manager: string;
  operation: "Apply" | "Update";
  apiVersion: string;
  subresource: string;
  time: string;
  fields: Set<string>;
}

interface Stored {
  obj: JsonObject;
  managers: ManagerEntry[];
}

interface ResourceType {
  group: string;
  version: string;
  resource: string;
  kind: string;
  subresources: string[];
}

const TYPES: ResourceType[] = [
  { group: "apps", version: "v1", resource: "deployments", kind: "Deployment", subresources: ["scale"] },
  { group: "apps", version: "v1", resource: "statefulsets", kind: "StatefulSet", subresources: ["scale"] },
  { group: "autoscaling", version: "v2", resource: "horizontalpodautoscalers", kind: "HorizontalPodAutoscaler", subresources: [] },
  { group: "", version: "v1", resource: "pods", kind: "Pod", subresources: ["resize"] },
  { group: "", version: "v1", resource: "events", kind: "Event", subresources: [] },
  { group: "events.k8s.io", version: "v1", resource: "events", kind: "Event", subresources: [] },
];

function typeOf(group: string, resource: string): ResourceType | undefined {
  return TYPES.find((t) => t.group === group && t.resource === resource);
}

/** The type of an object by apiVersion and kind. */
function typeOfKind(apiVersion: string, kind: string): ResourceType | undefined {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  return TYPES.find((t) => t.group === group && t.version === version && t.kind === kind);
}

interface Route {
  type: ResourceType;
  namespace: string;
  name: string;
  subresource: string;
}

const ADMIN = "system:admin";

/** An object as the API returns it (plain JSON; typed loosely so tests can read any field). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type KubeObject = Record<string, any>;

/** See the module comment. */
export class KubeSim {
  /** Every request, in arrival order. */
  readonly audit: AuditEntry[] = [];
  /** Every accepted write, in order. */
  readonly writes: WriteRecord[] = [];
  private readonly store = new Map<string, Stored>();
  private readonly faults: (Fault & { left: number })[] = [];
  private resourceVersion = 1000;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  /** Base URL once started, e.g. `http://127.0.0.1:40123`. */
  url = "";
  /** Requests being handled now per object (`group/resource/namespace/name`, subresources count for their object). */
  private readonly concurrent = new Map<string, number>();
  /** Most requests handled at once for any one object (single-flight evidence). */
  maxConcurrentPerObject = 0;

  constructor(private readonly opts: KubeSimOptions = {}) {
    // With a fixed port the URL is known before start (a client may be configured first).
    if (opts.port) this.url = `http://${opts.host ?? "127.0.0.1"}:${opts.port}`;
  }

  async start(): Promise<string> {
    const server = createServer((req, res) => void this.handle(req, res));
    server.on("connection", (s) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.opts.port ?? 0, this.opts.host ?? "127.0.0.1", () => resolve());
    });
    this.server = server;
    const a = server.address() as AddressInfo;
    this.url = `http://${a.address}:${a.port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    for (const sock of this.sockets) sock.destroy();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  /** Options for client-node's `KubeConfig.loadFromOptions` pointing at this server with `token`. */
  kubeConfigOptions(token = "admin-token"): Record<string, unknown> {
    return {
      clusters: [{ name: "kube-sim", server: this.url, skipTLSVerify: true }],
      users: [{ name: "kube-sim-user", token }],
      contexts: [{ name: "kube-sim", cluster: "kube-sim", user: "kube-sim-user", namespace: "default" }],
      currentContext: "kube-sim",
    };
  }

  /** Injects a fault (see {@link Fault}); returns a function that removes it. */
  inject(fault: Fault): () => void {
    const f = { ...fault, left: fault.times ?? 1 };
    this.faults.push(f);
    return () => {
      const i = this.faults.indexOf(f);
      if (i >= 0) this.faults.splice(i, 1);
    };
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  // ---------------------------------------------------------------------------------------------
  // Direct access for tests (what other writers in a cluster do: kubectl, controllers).

  private key(group: string, resource: string, namespace: string, name: string): string {
    return `${group}|${resource}|${namespace}|${name}`;
  }

  /**
   * Creates an object as `manager` would with a create (operation Update owning every field it
   * set, as `kubectl create` or a client-side `kubectl apply` does). Returns the stored object.
   */
  create(object: KubeObject, opts: { manager?: string } = {}): KubeObject {
    const t = typeOfKind(String(object.apiVersion), String(object.kind));
    if (!t) throw new Error(`kube-sim: unsupported apiVersion/kind ${object.apiVersion}/${object.kind}`);
    const obj = clone(object) as JsonObject;
    const meta = (obj.metadata ??= {}) as JsonObject;
    const ns = String(meta.namespace ?? "default");
    meta.namespace = ns;
    if (typeof meta.name !== "string") throw new Error("kube-sim: metadata.name is required");
    const k = this.key(t.group, t.resource, ns, meta.name);
    if (this.store.has(k)) throw new Error(`kube-sim: ${t.resource} ${ns}/${meta.name} exists`);
    meta.uid = randomUUID();
    meta.creationTimestamp = new Date().toISOString();
    meta.generation = 1;
    meta.resourceVersion = String(++this.resourceVersion);
    const errs = validate(t, obj);
    if (errs.length) throw invalid(t.kind, t.group, String(meta.name), errs);
    const rec: Stored = { obj, managers: [] };
    const fields = new Set(leafPaths(obj).map(pathKey));
    if (fields.size) rec.managers.push({ manager: opts.manager ?? "kubectl-create", operation: "Update", apiVersion: `${t.group ? t.group + "/" : ""}${t.version}`, subresource: "", time: new Date().toISOString(), fields });
    this.refreshStatus(t, obj);
    this.store.set(k, rec);
    this.syncPods(t, obj);
    return this.render(rec);
  }

  /** The stored object (with managedFields), or undefined. */
  get(group: string, resource: string, namespace: string, name: string): KubeObject | undefined {
    const rec = this.store.get(this.key(group, resource, namespace, name));
    return rec ? this.render(rec) : undefined;
  }

  /** Objects of a type in a namespace. */
  list(group: string, resource: string, namespace: string): KubeObject[] {
    const prefix = this.key(group, resource, namespace, "");
    return [...this.store.entries()].filter(([k]) => k.startsWith(prefix)).map(([, r]) => this.render(r));
  }

  /** Another writer changes an object (an Update by `manager`): bumps resourceVersion, takes ownership of what changed. */
  modify(group: string, resource: string, namespace: string, name: string, change: (obj: KubeObject) => void, manager = "kube-controller-manager"): KubeObject {
    const t = typeOf(group, resource);
    const rec = this.store.get(this.key(group, resource, namespace, name));
    if (!t || !rec) throw new Error(`kube-sim: no ${resource} ${namespace}/${name}`);
    const before = clone(rec.obj);
    change(rec.obj);
    this.commit(t, rec, before, manager, "Update", "");
    return this.render(rec);
  }

  /** Deletes an object (the workload is gone). */
  remove(group: string, resource: string, namespace: string, name: string): boolean {
    return this.store.delete(this.key(group, resource, namespace, name));
  }

  /** Events created through the API (core/v1 and events.k8s.io/v1). */
  events(): KubeObject[] {
    return [...this.store.entries()].filter(([k]) => k.startsWith("|events|") || k.startsWith("events.k8s.io|events|")).map(([, r]) => this.render(r));
  }

  // ---------------------------------------------------------------------------------------------

  private render(rec: Stored): JsonObject {
    const out = clone(rec.obj);
    const meta = out.metadata as JsonObject;
    if (rec.managers.length) {
      meta.managedFields = rec.managers.map((m) => ({
        manager: m.manager,
        operation: m.operation,
        apiVersion: m.apiVersion,
        time: m.time,
        fieldsType: "FieldsV1",
        fieldsV1: toFieldsV1([...m.fields].map(keyPath)),
        ...(m.subresource ? { subresource: m.subresource } : {}),
      }));
    }
    return out;
  }

  /** Status the controllers would report: replicas follow spec at once (pods start instantly here). */
  private refreshStatus(t: ResourceType, obj: JsonObject): void {
    if (t.resource !== "deployments" && t.resource !== "statefulsets") return;
    const spec = (obj.spec ?? {}) as JsonObject;
    const replicas = typeof spec.replicas === "number" ? spec.replicas : 1;
    obj.status = { observedGeneration: (obj.metadata as JsonObject).generation ?? 1, replicas, readyReplicas: replicas, availableReplicas: replicas, updatedReplicas: replicas };
  }

  private selectorString(obj: JsonObject): string {
    const ml = (getPath(obj, ["f:spec", "f:selector", "f:matchLabels"]) ?? {}) as JsonObject;
    return Object.entries(ml).map(([k, v]) => `${k}=${v}`).join(",");
  }

  /** Creates or deletes the workload's pods so their count follows spec.replicas. */
  private syncPods(t: ResourceType, obj: JsonObject): void {
    if (this.opts.managePods === false || (t.resource !== "deployments" && t.resource !== "statefulsets")) return;
    const meta = obj.metadata as JsonObject;
    const ns = String(meta.namespace);
    const replicas = Number((obj.spec as JsonObject)?.replicas ?? 1);
    const template = (getPath(obj, ["f:spec", "f:template"]) ?? {}) as JsonObject;
    const pods = this.list("", "pods", ns).filter((p) => (p.metadata as JsonObject).ownerReferences && JSON.stringify((p.metadata as JsonObject).ownerReferences).includes(String(meta.uid)));
    const names = new Set(pods.map((p) => String((p.metadata as JsonObject).name)));
    for (let i = 0; i < replicas; i++) {
      const name = `${meta.name}-${i}`;
      if (names.has(name)) continue;
      const spec = clone((template.spec ?? { containers: [] }) as JsonObject);
      const containers = (spec.containers ?? []) as JsonObject[];
      const rec: Stored = {
        obj: {
          apiVersion: "v1",
          kind: "Pod",
          metadata: {
            name, namespace: ns, uid: randomUUID(), creationTimestamp: new Date().toISOString(), resourceVersion: String(++this.resourceVersion),
            labels: clone(((template.metadata as JsonObject)?.labels ?? {}) as JsonObject),
            ownerReferences: [{ apiVersion: `${t.group}/${t.version}`, kind: t.kind, name: String(meta.name), uid: String(meta.uid), controller: true }],
          },
          spec,
          status: { phase: "Running", containerStatuses: containers.map((c) => ({ name: c.name, ready: true, resources: clone(c.resources ?? {}) })) },
        },
        managers: [],
      };
      this.store.set(this.key("", "pods", ns, name), rec);
    }
    for (const name of names) {
      const i = Number(name.slice(String(meta.name).length + 1));
      if (Number.isInteger(i) && i >= replicas) this.store.delete(this.key("", "pods", ns, name));
    }
  }

  /** Stores a change: ownership of changed fields moves to `manager`; resourceVersion and generation move on. */
  private commit(t: ResourceType, rec: Stored, before: JsonObject, manager: string, operation: "Update" | "Apply", subresource: string, applied?: FieldPath[]): boolean {
    const changed = changedPaths(before, rec.obj);
    const now = new Date().toISOString();
    const apiVersion = `${t.group ? t.group + "/" : ""}${t.version}`;
    if (operation === "Update" && changed.length) {
      const keys = changed.map(pathKey);
      for (const m of rec.managers) if (m.manager !== manager || m.operation !== "Update" || m.subresource !== subresource) for (const k of keys) m.fields.delete(k);
      let own = rec.managers.find((m) => m.manager === manager && m.operation === "Update" && m.subresource === subresource);
      if (!own) rec.managers.push((own = { manager, operation, apiVersion, subresource, time: now, fields: new Set() }));
      for (const p of changed) if (getPath(rec.obj, p) !== undefined) own.fields.add(pathKey(p));
      own.time = now;
    }
    if (operation === "Apply" && applied) {
      let own = rec.managers.find((m) => m.manager === manager && m.operation === "Apply");
      if (!own) rec.managers.push((own = { manager, operation, apiVersion, subresource, time: now, fields: new Set() }));
      own.fields = new Set(applied.map(pathKey));
      if (changed.length) own.time = now;
    }
    rec.managers = rec.managers.filter((m) => m.fields.size > 0);
    if (!changed.length) return false;
    const meta = rec.obj.metadata as JsonObject;
    meta.resourceVersion = String(++this.resourceVersion);
    if (changed.some((p) => p[0] === "f:spec")) meta.generation = Number(meta.generation ?? 1) + 1;
    this.refreshStatus(t, rec.obj);
    this.syncPods(t, rec.obj);
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // HTTP

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://sim");
    const entry: AuditEntry = {
      verb: "", group: "", resource: "", subresource: "", namespace: "", name: "", user: "", code: 0,
      contentType: String(req.headers["content-type"] ?? "").split(";")[0].trim(),
      fieldManager: url.searchParams.get("fieldManager") ?? "", dryRun: url.searchParams.has("dryRun"), timeMs: Date.now(),
    };
    let code = 500;
    let body: unknown;
    let headers: Record<string, string> = {};
    let objectKey = "";
    try {
      const raw = await readBody(req);
      const route = parseRoute(url.pathname);
      const method = req.method ?? "GET";
      const verb = method === "GET" ? (route?.name ? "get" : "list") : method === "PATCH" ? "patch" : method === "PUT" ? "update" : method === "POST" ? "create" : method === "DELETE" ? "delete" : method.toLowerCase();
      if (route) Object.assign(entry, { verb, group: route.type.group, resource: route.type.resource, subresource: route.subresource, namespace: route.namespace, name: route.name });
      if (route?.name) {
        objectKey = `${route.type.group}/${route.type.resource}/${route.namespace}/${route.name}`;
        const n = (this.concurrent.get(objectKey) ?? 0) + 1;
        this.concurrent.set(objectKey, n);
        if (n > this.maxConcurrentPerObject) this.maxConcurrentPerObject = n;
      }
      entry.user = this.authenticate(req);
      if (!route) throw pathNotFound();
      this.authorize(entry);
      for (const f of [...this.faults]) {
        if (!matches(f.match, entry)) continue;
        if (--f.left <= 0) this.faults.splice(this.faults.indexOf(f), 1);
        if (f.delayMs) await new Promise((r) => setTimeout(r, f.delayMs));
        f.before?.(this);
        if (f.respond) throw f.respond.code === 429 ? tooManyRequests(f.respond.retryAfterSec ?? 1) : serverError(f.respond.code, f.respond.retryAfterSec);
      }
      [code, body] = this.dispatch(route, verb, url.searchParams, entry, raw, String(req.headers["user-agent"] ?? ""));
    } catch (err) {
      if (err instanceof StatusError) {
        code = err.status.code;
        body = err.status;
        headers = err.headers;
      } else {
        code = 500;
        body = serverError(500).status;
        (body as { message: string }).message = `Internal error occurred: ${(err as Error).message}`;
      }
    }
    entry.code = code;
    this.audit.push(entry);
    if (objectKey) this.concurrent.set(objectKey, (this.concurrent.get(objectKey) ?? 1) - 1);
    const text = JSON.stringify(body);
    res.writeHead(code, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
    res.end(text);
  }

  private authenticate(req: IncomingMessage): string {
    const rbac = this.opts.rbac;
    if (!rbac) return ADMIN;
    const m = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ""));
    const user = m ? rbac.tokens[m[1]] : undefined;
    if (!user) throw unauthorized();
    return user;
  }

  private authorize(e: AuditEntry): void {
    const rbac = this.opts.rbac;
    if (!rbac || e.user === ADMIN) return;
    const binding = rbac.rules[e.user];
    const res = e.subresource ? `${e.resource}/${e.subresource}` : e.resource;
    const ok =
      binding &&
      (!binding.namespaces || binding.namespaces.includes(e.namespace)) &&
      binding.rules.some((r) => (r.apiGroups.includes(e.group) || r.apiGroups.includes("*")) && (r.resources.includes(res) || r.resources.includes("*")) && (r.verbs.includes(e.verb) || r.verbs.includes("*")));
    if (!ok) throw forbidden(e.user, e.verb, e.resource, e.subresource, e.group, e.namespace, e.name);
  }

  private dispatch(route: Route, verb: string, q: URLSearchParams, entry: AuditEntry, raw: string, userAgent: string): [number, unknown] {
    const { type: t, namespace, name, subresource } = route;
    const dryRun = q.get("dryRun");
    if (dryRun !== null && dryRun !== "All") throw badRequest(`Invalid dry run value: "${dryRun}"; supported values: "All"`);
    const force = q.get("force");
    const manager = q.get("fieldManager") ?? (userAgent.split("/")[0] || "unknown");
    if (manager.length > 128) throw badRequest("fieldManager: Too long: must have at most 128 bytes");
    if (verb === "list") {
      if (t.resource !== "pods" && t.resource !== "events") throw methodNotAllowed("GET");
      const selector = parseSelector(q.get("labelSelector") ?? "");
      const items = this.list(t.group, t.resource, namespace).filter((o) => selector(((o.metadata as JsonObject).labels ?? {}) as JsonObject));
      return [200, { apiVersion: t.group ? `${t.group}/${t.version}` : t.version, kind: `${t.kind}List`, metadata: { resourceVersion: String(this.resourceVersion) }, items }];
    }
    if (verb === "create") {
      if (t.resource !== "events" || name) throw methodNotAllowed("POST");
      const obj = parseJson(raw);
      const meta = (obj.metadata ??= {}) as JsonObject;
      if (!meta.name && meta.generateName) meta.name = `${meta.generateName}${randomUUID().slice(0, 5)}`;
      if (!meta.name) throw invalid(t.kind, t.group, "", [{ field: "metadata.name", message: "Required value: name or generateName is required", reason: "FieldValueRequired" }]);
      if (meta.namespace && meta.namespace !== namespace) throw badRequest("the namespace of the provided object does not match the namespace sent on the request");
      meta.namespace = namespace;
      obj.apiVersion = t.group ? `${t.group}/${t.version}` : t.version;
      obj.kind = "Event";
      if (dryRun) return [201, obj];
      const created = this.create(obj, { manager });
      this.recordWrite("create", t, "", namespace, String(meta.name), created);
      return [201, created];
    }
    if (subresource && !t.subresources.includes(subresource)) throw pathNotFound();
    const rec = this.store.get(this.key(t.group, t.resource, namespace, name));
    if (!rec) throw notFound(t.resource, t.group, name);
    if (verb === "get") return [200, subresource === "scale" ? this.scaleView(t, rec) : this.render(rec)];
    if (verb !== "patch" && verb !== "update") throw methodNotAllowed(verb.toUpperCase());
    if (verb === "update" && subresource !== "scale") throw methodNotAllowed("PUT");
    const contentType = entry.contentType;
    const isApply = contentType === "application/apply-patch+yaml";
    if (force !== null && !isApply) throw badRequest("force flag must only be set for apply patch requests");
    if (isApply && !q.get("fieldManager")) throw badRequest("PATCH requests with application/apply-patch+yaml must include fieldManager");
    const before = clone(rec.obj);
    const work: Stored = { obj: clone(rec.obj), managers: rec.managers.map((m) => ({ ...m, fields: new Set(m.fields) })) };
    let applied: FieldPath[] | undefined;
    if (subresource === "scale") {
      const view = this.scaleView(t, rec);
      const next = verb === "update" ? parseJson(raw) : patchBody(contentType, view, raw);
      const rv = (next.metadata as JsonObject | undefined)?.resourceVersion;
      if (rv !== undefined && rv !== "" && rv !== (rec.obj.metadata as JsonObject).resourceVersion) throw resourceVersionConflict(t.resource, t.group, name);
      const replicas = getPath(next, ["f:spec", "f:replicas"]);
      if (typeof replicas !== "number" || !Number.isInteger(replicas) || replicas < 0) {
        throw invalid("Scale", "autoscaling", name, [{ field: "spec.replicas", message: `Invalid value: ${JSON.stringify(replicas ?? null)}: must be greater than or equal to 0` }]);
      }
      ((work.obj.spec ??= {}) as JsonObject).replicas = replicas;
    } else if (isApply) {
      const cfg = parseApply(raw);
      if (cfg.apiVersion !== (t.group ? `${t.group}/${t.version}` : t.version) || cfg.kind !== t.kind) throw badRequest(`apply configuration must have apiVersion ${t.group ? t.group + "/" : ""}${t.version} and kind ${t.kind}, got ${cfg.apiVersion}/${cfg.kind}`);
      const meta = (cfg.metadata ?? {}) as JsonObject;
      if (meta.name !== undefined && meta.name !== name) throw badRequest(`the name of the object (${meta.name}) does not match the name on the URL (${name})`);
      if (meta.resourceVersion !== undefined && meta.resourceVersion !== (rec.obj.metadata as JsonObject).resourceVersion) throw resourceVersionConflict(t.resource, t.group, name);
      if (meta.managedFields !== undefined) throw badRequest("metadata.managedFields must be nil");
      applied = leafPaths(cfg);
      const conflicts: FieldConflict[] = [];
      const reqVersion = String(cfg.apiVersion);
      for (const p of applied) {
        const want = getPath(cfg, p);
        for (const m of work.managers) {
          if (m.manager === manager || !m.fields.has(pathKey(p))) continue;
          if (!deepEqual(getPath(work.obj, p), want)) conflicts.push({ manager: m.manager, field: pathString(p), ...(m.apiVersion !== reqVersion ? { apiVersion: m.apiVersion } : {}) });
        }
      }
      if (conflicts.length && force !== "true") throw applyConflict(conflicts);
      for (const c of conflicts) for (const m of work.managers) if (m.manager === c.manager) for (const p of applied) if (pathString(p) === c.field) m.fields.delete(pathKey(p));
      // Fields this manager applied before but no longer applies, and nobody else owns, are removed.
      const prev = work.managers.find((m) => m.manager === manager && m.operation === "Apply");
      const now = new Set(applied.map(pathKey));
      for (const k of prev?.fields ?? []) {
        if (now.has(k)) continue;
        if (!work.managers.some((m) => m !== prev && m.fields.has(k))) deletePath(work.obj, keyPath(k));
      }
      const { metadata: _m, apiVersion: _a, kind: _k, status: _s, ...rest } = cfg;
      work.obj = strategicMerge(work.obj, rest) as JsonObject;
      const labels = (meta.labels ?? undefined) as JsonObject | undefined;
      const annotations = (meta.annotations ?? undefined) as JsonObject | undefined;
      if (labels) (work.obj.metadata as JsonObject).labels = { ...(((work.obj.metadata as JsonObject).labels ?? {}) as JsonObject), ...labels };
      if (annotations) (work.obj.metadata as JsonObject).annotations = { ...(((work.obj.metadata as JsonObject).annotations ?? {}) as JsonObject), ...annotations };
    } else {
      const next = patchBody(contentType, work.obj, raw);
      const rv = (next.metadata as JsonObject | undefined)?.resourceVersion;
      if (rv !== (rec.obj.metadata as JsonObject).resourceVersion) throw resourceVersionConflict(t.resource, t.group, name);
      for (const f of ["name", "namespace", "uid", "creationTimestamp"]) (next.metadata as JsonObject)[f] = (rec.obj.metadata as JsonObject)[f];
      delete (next.metadata as JsonObject).managedFields;
      next.status = before.status ?? null;
      if (next.status === null) delete next.status;
      work.obj = next;
    }
    if (subresource === "resize") {
      // Only container CPU and memory may change through pods/resize.
      const changed = changedPaths(before, work.obj).map(pathString);
      const bad = changed.find((p) => !/^\.spec\.containers\[name="[^"]+"\]\.resources\.(requests|limits)\.(cpu|memory)$/.test(p));
      if (bad) throw invalid("Pod", "", name, [{ field: "spec", message: `Forbidden: only cpu and memory resources are mutable (changed ${bad})`, reason: "FieldValueForbidden" }]);
    } else if (t.resource === "pods" && !subresource) {
      const changed = changedPaths(before, work.obj).map(pathString);
      const bad = changed.find((p) => !p.startsWith(".metadata.labels") && !p.startsWith(".metadata.annotations"));
      if (bad) throw invalid("Pod", "", name, [{ field: "spec", message: `Forbidden: pod updates may not change fields other than \`spec.containers[*].image\`,\`spec.initContainers[*].image\`,\`spec.activeDeadlineSeconds\`,\`spec.tolerations\` (only additions to existing tolerations),\`spec.terminationGracePeriodSeconds\` (allow it to be set to 1 if it was previously negative) (changed ${bad})`, reason: "FieldValueForbidden" }]);
    }
    const errs = validate(t, work.obj);
    if (errs.length) throw invalid(t.kind, t.group, name, errs);
    if (dryRun) return [200, subresource === "scale" ? this.scaleView(t, work) : this.render(work)];
    const changed = this.commit(t, work, before, manager, isApply ? "Apply" : "Update", subresource, applied);
    if (subresource === "resize" && changed) {
      // The kubelet applies the resize at once here: status follows the new spec.
      const status = (work.obj.status ??= {}) as JsonObject;
      status.containerStatuses = ((work.obj.spec as JsonObject).containers as JsonObject[]).map((c) => ({ name: c.name, ready: true, resources: clone(c.resources ?? {}) }));
    }
    rec.obj = work.obj;
    rec.managers = work.managers;
    if (changed) this.recordWrite(verb, t, subresource, namespace, name, this.render(rec));
    return [200, subresource === "scale" ? this.scaleView(t, rec) : this.render(rec)];
  }

  private recordWrite(verb: string, t: ResourceType, subresource: string, namespace: string, name: string, object: JsonObject): void {
    const w: WriteRecord = { verb, group: t.group, resource: t.resource, subresource, namespace, name, object, timeMs: performance.now() };
    this.writes.push(w);
    this.opts.onWrite?.(w);
  }

  /** The autoscaling/v1 Scale of a workload. */
  private scaleView(t: ResourceType, rec: Stored): JsonObject {
    const meta = rec.obj.metadata as JsonObject;
    const replicas = Number((rec.obj.spec as JsonObject)?.replicas ?? 1);
    return {
      apiVersion: "autoscaling/v1",
      kind: "Scale",
      metadata: { name: meta.name, namespace: meta.namespace, uid: meta.uid, resourceVersion: meta.resourceVersion, creationTimestamp: meta.creationTimestamp },
      spec: { replicas },
      status: { replicas: Number((rec.obj.status as JsonObject)?.replicas ?? replicas), selector: this.selectorString(rec.obj) },
    };
  }
}

function matches(m: FaultMatch | undefined, e: AuditEntry): boolean {
  if (!m) return true;
  return (m.verb === undefined || m.verb === e.verb) && (m.resource === undefined || m.resource === e.resource) && (m.subresource === undefined || m.subresource === e.subresource) && (m.namespace === undefined || m.namespace === e.namespace) && (m.name === undefined || m.name === e.name);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** `/api/v1/namespaces/<ns>/<resource>[/<name>[/<sub>]]` and `/apis/<group>/<version>/...`. */
function parseRoute(path: string): Route | undefined {
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (parts[0] === "api") [group, version, rest] = ["", parts[1], parts.slice(2)];
  else if (parts[0] === "apis") [group, version, rest] = [parts[1], parts[2], parts.slice(3)];
  else return undefined;
  if (rest[0] !== "namespaces" || rest.length < 3 || rest.length > 5) return undefined;
  const type = TYPES.find((t) => t.group === group && t.version === version && t.resource === rest[2]);
  if (!type) return undefined;
  return { type, namespace: rest[1], name: rest[3] ?? "", subresource: rest[4] ?? "" };
}

function parseJson(raw: string): JsonObject {
  try {
    const v = JSON.parse(raw) as Json;
    if (!isObject(v)) throw new Error("not an object");
    return v;
  } catch (err) {
    throw badRequest(`the request body could not be decoded: ${(err as Error).message}`);
  }
}

function parseApply(raw: string): JsonObject {
  let v: unknown;
  try {
    v = parseYaml(raw);
  } catch (err) {
    throw badRequest(`error decoding YAML: ${(err as Error).message}`);
  }
  if (!isObject(v)) throw badRequest("apply configuration must be an object");
  return v;
}

/** Applies a non-apply patch body to `target` by content type. */
function patchBody(contentType: string, target: JsonObject, raw: string): JsonObject {
  switch (contentType) {
    case "application/merge-patch+json":
      return mergePatch(target, parseJson(raw)) as JsonObject;
    case "application/strategic-merge-patch+json":
      return strategicMerge(target, parseJson(raw)) as JsonObject;
    case "application/json-patch+json":
      return jsonPatch(target, raw);
    default:
      throw unsupportedMediaType(contentType);
  }
}

/** RFC 6902 JSON patch (add, replace, remove, test). */
function jsonPatch(target: JsonObject, raw: string): JsonObject {
  let ops: { op: string; path: string; value?: Json }[];
  try {
    ops = JSON.parse(raw);
    if (!Array.isArray(ops)) throw new Error("a JSON patch is a list of operations");
  } catch (err) {
    throw badRequest(`the request body could not be decoded: ${(err as Error).message}`);
  }
  const out = clone(target);
  for (const o of ops) {
    const tokens = o.path.split("/").slice(1).map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
    let parent: Json = out;
    for (const t of tokens.slice(0, -1)) {
      parent = Array.isArray(parent) ? parent[Number(t)] : isObject(parent) ? parent[t] : null;
      if (parent === undefined || parent === null) throw invalid("", "", "", [{ field: o.path, message: "doc is missing path" }]);
    }
    const last = tokens[tokens.length - 1];
    if (o.op === "test") {
      const cur = Array.isArray(parent) ? parent[Number(last)] : (parent as JsonObject)[last];
      if (!deepEqual(cur, o.value)) throw invalid("", "", "", [{ field: o.path, message: "testing value failed" }]);
    } else if (o.op === "remove") {
      if (Array.isArray(parent)) parent.splice(Number(last), 1);
      else delete (parent as JsonObject)[last];
    } else if (o.op === "add" || o.op === "replace") {
      if (Array.isArray(parent)) {
        if (last === "-") parent.push(clone(o.value as Json));
        else if (o.op === "add") parent.splice(Number(last), 0, clone(o.value as Json));
        else parent[Number(last)] = clone(o.value as Json);
      } else (parent as JsonObject)[last] = clone(o.value as Json);
    } else throw badRequest(`unsupported JSON patch op ${o.op}`);
  }
  return out;
}

/** Equality-based label selectors (`a=b`, `a==b`, `a!=b`, `a`, `!a`), comma-separated. */
export function parseSelector(s: string): (labels: JsonObject) => boolean {
  const terms = s.split(",").map((x) => x.trim()).filter(Boolean).map((term) => {
    let m: RegExpExecArray | null;
    if ((m = /^([^!=\s]+)\s*!=\s*(.*)$/.exec(term))) return (l: JsonObject) => l[m![1]] !== m![2];
    if ((m = /^([^!=\s]+)\s*==?\s*(.*)$/.exec(term))) return (l: JsonObject) => l[m![1]] === m![2];
    if ((m = /^!([^!=\s]+)$/.exec(term))) return (l: JsonObject) => !(m![1] in l);
    if ((m = /^([^!=\s]+)$/.exec(term))) return (l: JsonObject) => m![1] in l;
    throw badRequest(`unable to parse requirement: ${term}`);
  });
  return (labels) => terms.every((t) => t(labels));
}

/** Validation of the fields Foresight writes; causes as the API server words them. */
function validate(t: ResourceType, obj: JsonObject): { field: string; message: string; reason?: string }[] {
  const errs: { field: string; message: string; reason?: string }[] = [];
  const spec = (obj.spec ?? {}) as JsonObject;
  const int = (v: Json | undefined) => typeof v === "number" && Number.isInteger(v);
  if (t.resource === "deployments" || t.resource === "statefulsets") {
    if (spec.replicas !== undefined && (!int(spec.replicas) || (spec.replicas as number) < 0)) errs.push({ field: "spec.replicas", message: `Invalid value: ${JSON.stringify(spec.replicas)}: must be greater than or equal to 0` });
    if (!isObject(spec.selector)) errs.push({ field: "spec.selector", message: "Required value", reason: "FieldValueRequired" });
    const containers = getPath(obj, ["f:spec", "f:template", "f:spec", "f:containers"]);
    if (!Array.isArray(containers) || containers.length === 0) errs.push({ field: "spec.template.spec.containers", message: "Required value", reason: "FieldValueRequired" });
    else containers.forEach((c, i) => validateResources(c as JsonObject, `spec.template.spec.containers[${i}]`, errs));
  } else if (t.resource === "pods") {
    const containers = (spec.containers ?? []) as JsonObject[];
    containers.forEach((c, i) => validateResources(c, `spec.containers[${i}]`, errs));
  } else if (t.resource === "horizontalpodautoscalers") {
    const min = spec.minReplicas ?? 1;
    if (!int(min) || (min as number) < 1) errs.push({ field: "spec.minReplicas", message: `Invalid value: ${JSON.stringify(min)}: must be greater than or equal to 1` });
    if (!int(spec.maxReplicas) || (spec.maxReplicas as number) < 1) errs.push({ field: "spec.maxReplicas", message: `Invalid value: ${JSON.stringify(spec.maxReplicas ?? null)}: must be greater than 0` });
    else if (int(min) && (spec.maxReplicas as number) < (min as number)) errs.push({ field: "spec.maxReplicas", message: `Invalid value: ${spec.maxReplicas}: must be greater than or equal to \`minReplicas\`` });
  }
  return errs;
}

function validateResources(c: JsonObject, at: string, errs: { field: string; message: string }[]): void {
  const r = (c.resources ?? {}) as JsonObject;
  const requests = (r.requests ?? {}) as JsonObject;
  const limits = (r.limits ?? {}) as JsonObject;
  for (const [kind, m] of [["requests", requests], ["limits", limits]] as const) {
    for (const [res, q] of Object.entries(m)) {
      const v = parseQuantity(q);
      if (!Number.isFinite(v)) errs.push({ field: `${at}.resources.${kind}[${res}]`, message: `Invalid value: ${JSON.stringify(q)}: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'` });
      else if (v < 0) errs.push({ field: `${at}.resources.${kind}[${res}]`, message: `Invalid value: ${JSON.stringify(q)}: must be greater than or equal to 0` });
    }
  }
  for (const res of ["cpu", "memory"]) {
    if (requests[res] === undefined || limits[res] === undefined) continue;
    if (parseQuantity(requests[res]) > parseQuantity(limits[res])) errs.push({ field: `${at}.resources.requests`, message: `Invalid value: ${JSON.stringify(requests[res])}: must be less than or equal to ${res} limit of ${limits[res]}` });
  }
}
