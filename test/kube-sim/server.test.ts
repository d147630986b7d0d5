// The Kubernetes API test server's own semantics, through the real client-node over HTTP: Status
// bodies, dryRun, strategic merge of containers, PUT on scale with a stale resourceVersion,
// apply without a field manager, shared ownership, unsupported patch types, events.k8s.io Events.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { AppsV1Api, ApiException, CoreV1Api, EventsV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { KubeSim } from "../../src/kube-sim/index.ts";
import { deployment, NS } from "../allocator/kube/support.ts";

let sim: KubeSim;
let apps: AppsV1Api;
let core: CoreV1Api;
let events: EventsV1Api;
test.before.each(async () => {
  sim = new KubeSim();
  await sim.start();
  const kc = new KubeConfig();
  kc.loadFromOptions(sim.kubeConfigOptions());
  apps = kc.makeApiClient(AppsV1Api);
  core = kc.makeApiClient(CoreV1Api);
  events = kc.makeApiClient(EventsV1Api);
  sim.create(deployment("web", { replicas: 2, requests: { cpu: "100m" } }), { manager: "kubectl-client-side-apply" });
});
test.after.each(async () => {
  await sim.stop();
});

async function failure(p: Promise<unknown>): Promise<{ code: number; status: any; headers: Record<string, string> }> {
  try {
    await p;
  } catch (err) {
    const e = err as ApiException<string>;
    return { code: e.code, status: JSON.parse(e.body), headers: e.headers };
  }
  throw new Error("expected the request to fail");
}

test("404 NotFound Status names the resource as the API server does", async () => {
  const f = await failure(apps.readNamespacedDeployment({ name: "nope", namespace: NS }));
  assert.is(f.code, 404);
  assert.equal(f.status, { apiVersion: "v1", kind: "Status", metadata: {}, status: "Failure", message: 'deployments.apps "nope" not found', reason: "NotFound", details: { name: "nope", group: "apps", kind: "deployments" }, code: 404 });
});

test("dryRun=All validates and answers but persists nothing", async () => {
  const rv = sim.get("apps", "deployments", NS, "web")!.metadata.resourceVersion;
  const out = await apps.patchNamespacedDeploymentScale({ name: "web", namespace: NS, body: { spec: { replicas: 9 } }, dryRun: "All" }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch));
  assert.is(out.spec?.replicas, 9);
  assert.is(sim.get("apps", "deployments", NS, "web")!.spec.replicas, 2);
  assert.is(sim.get("apps", "deployments", NS, "web")!.metadata.resourceVersion, rv);
  const bad = await failure(apps.patchNamespacedDeploymentScale({ name: "web", namespace: NS, body: { spec: { replicas: 9 } }, dryRun: "Some" }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch)));
  assert.is(bad.code, 400);
});

test("strategic merge patch merges containers by name; merge patch replaces the list", async () => {
  await apps.patchNamespacedDeployment({ name: "web", namespace: NS, body: { spec: { template: { spec: { containers: [{ name: "sidecar", image: "s:1" }] } } } } }, setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch));
  assert.equal(sim.get("apps", "deployments", NS, "web")!.spec.template.spec.containers.map((c: any) => c.name), ["server", "sidecar"]);
  await apps.patchNamespacedDeployment({ name: "web", namespace: NS, body: { spec: { template: { spec: { containers: [{ name: "only", image: "o:1" }] } } } } }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch));
  assert.equal(sim.get("apps", "deployments", NS, "web")!.spec.template.spec.containers.map((c: any) => c.name), ["only"]);
});

test("PUT scale with a stale resourceVersion: 409 Conflict with the real message", async () => {
  const s = await apps.readNamespacedDeploymentScale({ name: "web", namespace: NS });
  sim.modify("apps", "deployments", NS, "web", (o) => (o.metadata.labels.x = "1"));
  const f = await failure(apps.replaceNamespacedDeploymentScale({ name: "web", namespace: NS, body: { ...s, spec: { replicas: 5 } } }));
  assert.is(f.code, 409);
  assert.is(f.status.reason, "Conflict");
  assert.is(f.status.message, 'Operation cannot be fulfilled on deployments.apps "web": the object has been modified; please apply your changes to the latest version and try again');
  const fresh = await apps.readNamespacedDeploymentScale({ name: "web", namespace: NS });
  const ok = await apps.replaceNamespacedDeploymentScale({ name: "web", namespace: NS, body: { ...fresh, spec: { replicas: 5 } } });
  assert.is(ok.spec?.replicas, 5);
});

test("apply: fieldManager required; same value shares ownership without conflict; force only for apply", async () => {
  const apply = setHeaderOptions("Content-Type", PatchStrategy.ServerSideApply);
  const body = { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web" }, spec: { template: { spec: { containers: [{ name: "server", resources: { requests: { cpu: "100m" } } }] } } } };
  const f = await failure(apps.patchNamespacedDeployment({ name: "web", namespace: NS, body }, apply));
  assert.is(f.code, 400);
  await apps.patchNamespacedDeployment({ name: "web", namespace: NS, body, fieldManager: "foresight" }, apply);
  const owners = (sim.get("apps", "deployments", NS, "web")!.metadata.managedFields as any[]).filter((m) => m.fieldsV1["f:spec"]?.["f:template"]?.["f:spec"]?.["f:containers"]?.['k:{"name":"server"}']?.["f:resources"]).map((m) => m.manager);
  assert.equal(owners.sort(), ["foresight", "kubectl-client-side-apply"], "both own the cpu request (same value)");
  const g = await failure(apps.patchNamespacedDeployment({ name: "web", namespace: NS, body: { spec: { replicas: 3 } }, force: true }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch)));
  assert.is(g.code, 400);
});

test("unsupported patch type: 415; 429 carries Retry-After; events.k8s.io Events are stored", async () => {
  const f = await failure(apps.patchNamespacedDeployment({ name: "web", namespace: NS, body: { spec: {} } }, setHeaderOptions("Content-Type", "application/xml")));
  assert.is(f.code, 415);
  assert.is(f.status.reason, "UnsupportedMediaType");
  sim.inject({ match: { verb: "list", resource: "pods" }, respond: { code: 429, retryAfterSec: 7 } });
  const t = await failure(core.listNamespacedPod({ namespace: NS }));
  assert.is(t.code, 429);
  assert.is(t.headers["retry-after"], "7");
  assert.is(t.status.details.retryAfterSeconds, 7);
  const pods = await core.listNamespacedPod({ namespace: NS, labelSelector: "app=web" });
  assert.is(pods.items.length, 2, "pods follow the Deployment's replicas");
  await events.createNamespacedEvent({ namespace: NS, body: { metadata: { name: "web.1" }, eventTime: new Date() as any, reason: "Test", action: "Scale", reportingController: "foresight", reportingInstance: "a", regarding: { kind: "Deployment", name: "web", namespace: NS } } as any });
  assert.is(sim.events().length, 1);
  assert.is(sim.events()[0].apiVersion, "events.k8s.io/v1");
});

test.run();
