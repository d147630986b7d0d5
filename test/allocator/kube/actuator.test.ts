// The actuator against the Kubernetes API test server, through the real client-node over HTTP:
// each mode, and each error path with its own named error class.
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { AuditEntry } from "../../../src/kube-sim/index.ts";
import { freePort } from "../../../src/nats/server.ts";
import {
  ApiThrottledError, FieldManagerConflictError, InvalidDecisionError, KubeUnreachableError, RbacForbiddenError, WorkloadGoneError,
} from "../../../src/allocator/kube/errors.ts";
import { NS, decision, deployment, hpa, metricValue, rig, target } from "./support.ts";

const patches = (audit: AuditEntry[]) => audit.filter((a) => a.verb === "patch" || a.verb === "update");

test("shadow: decision read, exported and recorded as an Event; nothing patched", async () => {
  const r = await rig({ targets: [target("web", "shadow")] });
  try {
    r.sim.create(deployment("web", { replicas: 2 }));
    r.actuator.submit(decision("web", 5, { predictiveReplicas: 5, reactiveReplicas: 3 }));
    assert.is((await r.next("web")).outcome, "shadow");
    r.actuator.submit(decision("web", 5, { predictiveReplicas: 5, reactiveReplicas: 3 }));
    assert.is((await r.next("web")).outcome, "shadow");
    assert.is(patches(r.sim.audit).length, 0, "shadow patches nothing");
    assert.is(r.sim.get("apps", "deployments", NS, "web")!.spec.replicas, 2);
    const events = r.sim.events();
    assert.is(events.length, 1, "one Event per changed decision, not per tick");
    assert.match(String(events[0].message), /would set replicas 2 -> 5/);
    assert.is((events[0].involvedObject as any).name, "web");
    assert.is(await metricValue(r.metrics, "foresight_pool_replicas_decided", { pool: "web" }), 5);
    assert.is(await metricValue(r.metrics, "foresight_pool_replicas_reactive_floor", { pool: "web" }), 3);
    assert.is(await metricValue(r.metrics, "foresight_pool_replicas_current", { pool: "web" }), 2);
  } finally {
    await r.close();
  }
});

test("scale: replicas through the scale subresource, resources by server-side apply as field manager foresight", async () => {
  const r = await rig({ targets: [target("web", "scale")] });
  try {
    r.sim.create(deployment("web", { replicas: 2, limits: { cpu: "4", memory: "8Gi" } }));
    r.actuator.submit(decision("web", 6, { cpuMillicores: 750, memoryMiB: 1024, annotations: { "kubernetes.io/ingress-bandwidth": "100M" } }));
    assert.is((await r.next("web")).outcome, "applied");
    const d = r.sim.get("apps", "deployments", NS, "web")!;
    assert.is(d.spec.replicas, 6);
    assert.equal(d.spec.template.spec.containers[0].resources.requests, { cpu: "750m", memory: "1024Mi" });
    assert.is(d.spec.template.metadata.annotations["kubernetes.io/ingress-bandwidth"], "100M");
    const mf = d.metadata.managedFields as any[];
    const apply = mf.find((m) => m.manager === "foresight" && m.operation === "Apply");
    assert.ok(apply, "foresight holds an Apply entry");
    assert.ok(apply.fieldsV1["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"server"}']["f:resources"]["f:requests"]["f:cpu"]);
    const scaleEntry = mf.find((m) => m.manager === "foresight" && m.subresource === "scale");
    assert.ok(scaleEntry?.fieldsV1["f:spec"]["f:replicas"], "replicas owned through the scale subresource");
    const p = patches(r.sim.audit);
    assert.equal(p.map((a) => `${a.resource}/${a.subresource}:${a.contentType}`), ["deployments/scale:application/merge-patch+json", "deployments/:application/apply-patch+yaml"]);
    assert.ok(p.every((a) => a.fieldManager === "foresight"));
    // The same decision again: the cluster matches, nothing is patched.
    r.actuator.submit(decision("web", 6, { cpuMillicores: 750, memoryMiB: 1024, annotations: { "kubernetes.io/ingress-bandwidth": "100M" } }));
    assert.is((await r.next("web")).outcome, "unchanged");
    assert.is(patches(r.sim.audit).length, 2);
    assert.ok(r.sim.events().some((e) => e.reason === "ForesightScaled"));
  } finally {
    await r.close();
  }
});

test("409 resourceVersion conflict: re-read and retried with the fresh resourceVersion", async () => {
  const r = await rig({ targets: [target("web", "scale")] });
  try {
    r.sim.create(deployment("web", { replicas: 2 }));
    // Another writer changes the Deployment between our read and our patch, twice.
    r.sim.inject({ match: { verb: "patch", subresource: "scale" }, times: 2, before: (sim) => sim.modify("apps", "deployments", NS, "web", (o: any) => (o.metadata.labels.touched = String(Date.now()))) });
    r.actuator.submit(decision("web", 4));
    assert.is((await r.next("web")).outcome, "applied");
    const codes = r.sim.audit.filter((a) => a.subresource === "scale" && a.verb === "patch").map((a) => a.code);
    assert.equal(codes, [409, 409, 200]);
    assert.is(r.sim.get("apps", "deployments", NS, "web")!.spec.replicas, 4);
    assert.is(await metricValue(r.metrics, "foresight_allocator_conflict_retries_total", { pool: "web" }), 2);
  } finally {
    await r.close();
  }
});

test("SSA field-manager conflict: reports the owner, never forces by default; forceConflicts takes the field", async () => {
  const r = await rig({ targets: [target("web", "scale")] });
  try {
    r.sim.create(deployment("web", { replicas: 3, requests: { cpu: "500m" } }), { manager: "kubectl-client-side-apply" });
    r.actuator.submit(decision("web", 3, { cpuMillicores: 900 }));
    const { outcome, error } = await r.next("web");
    assert.is(outcome, "field-conflict");
    assert.instance(error, FieldManagerConflictError);
    const owners = (error as FieldManagerConflictError).owners;
    assert.equal(owners, [{ manager: "kubectl-client-side-apply", field: '.spec.template.spec.containers[name="server"].resources.requests.cpu' }]);
    assert.match(error!.message, /owned by field manager "kubectl-client-side-apply"/);
    assert.is(r.sim.get("apps", "deployments", NS, "web")!.spec.template.spec.containers[0].resources.requests.cpu, "500m", "not forced");
    assert.ok(r.sim.audit.every((a) => !a.dryRun), "no dry runs");
    assert.ok(r.sim.events().some((e) => e.reason === "ForesightFieldConflict" && /kubectl-client-side-apply/.test(String(e.message))));
    assert.ok(r.lines.some((l) => l.level === 40 && /kubectl-client-side-apply/.test(JSON.stringify(l.owners))));
    await r.actuator.stop();
    // With forceConflicts the same decision takes ownership.
    const f = await rig({ targets: [target("web", "scale")], actuator: { forceConflicts: true } });
    try {
      f.sim.create(deployment("web", { replicas: 3, requests: { cpu: "500m" } }), { manager: "kubectl-client-side-apply" });
      f.actuator.submit(decision("web", 3, { cpuMillicores: 900 }));
      assert.is((await f.next("web")).outcome, "applied");
      const d = f.sim.get("apps", "deployments", NS, "web")!;
      assert.is(d.spec.template.spec.containers[0].resources.requests.cpu, "900m");
      const kubectl = (d.metadata.managedFields as any[]).find((m) => m.manager === "kubectl-client-side-apply");
      assert.not.ok(kubectl.fieldsV1["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"server"}']["f:resources"], "ownership moved to foresight");
    } finally {
      await f.close();
    }
  } finally {
    await r.close();
  }
});

test("422: decision dropped, logged and counted with the server's message", async () => {
  const r = await rig({ targets: [target("web", "scale")] });
  try {
    r.sim.create(deployment("web", { replicas: 2, limits: { cpu: "1" } }));
    r.actuator.submit(decision("web", 2, { cpuMillicores: 2000 }));
    const { outcome, error } = await r.next("web");
    assert.is(outcome, "invalid");
    assert.instance(error, InvalidDecisionError);
    const msg = (error as InvalidDecisionError).serverMessage;
    assert.is(msg, 'Deployment.apps "web" is invalid: spec.template.spec.containers[0].resources.requests: Invalid value: "2000m": must be less than or equal to cpu limit of 1');
    assert.ok(r.lines.some((l) => l.serverMessage === msg && /dropped/.test(l.msg)));
    assert.is(await metricValue(r.metrics, "foresight_allocator_actuations_total", { pool: "web", outcome: "invalid" }), 1);
    assert.is(await metricValue(r.metrics, "foresight_allocator_actuation_errors_total", { pool: "web", error: "InvalidDecisionError" }), 1);
    assert.is(r.sim.get("apps", "deployments", NS, "web")!.spec.template.spec.containers[0].resources.requests, undefined);
  } finally {
    await r.close();
  }
});

test("403: one clear error naming verb, resource, namespace and the missing RBAC rule", async () => {
  const user = "system:serviceaccount:foresight:allocator";
  const r = await rig({
    targets: [target("web", "scale")],
    token: "t1",
    sim: { rbac: { tokens: { t1: user }, rules: { [user]: { rules: [{ apiGroups: ["apps"], resources: ["deployments", "deployments/scale"], verbs: ["get"] }, { apiGroups: [""], resources: ["events"], verbs: ["create"] }] } } } },
  });
  try {
    r.sim.create(deployment("web", { replicas: 2 }));
    r.actuator.submit(decision("web", 5));
    const { outcome, error } = await r.next("web");
    assert.is(outcome, "forbidden");
    assert.instance(error, RbacForbiddenError);
    const e = error as RbacForbiddenError;
    assert.equal(e.missingRule, { apiGroups: ["apps"], resources: ["deployments/scale"], verbs: ["patch"] });
    assert.match(e.message, /cannot patch resource "deployments\/scale" in API group "apps" in namespace "shop"/);
    assert.match(e.message, new RegExp(`User "${user}" cannot patch resource "deployments/scale" in API group "apps" in the namespace "shop"`));
    r.actuator.submit(decision("web", 5));
    await r.next("web");
    const errors = r.lines.filter((l) => l.level === 50 && l.error === "RbacForbiddenError");
    assert.is(errors.length, 1, "logged once, not every tick");
  } finally {
    await r.close();
  }
});

test("429 with Retry-After: backs off for the server's wait, then applies the newest decision", async () => {
  const r = await rig({ targets: [target("web", "scale")] });
  try {
    r.sim.create(deployment("web", { replicas: 2 }));
    r.sim.inject({ match: { verb: "patch", subresource: "scale" }, respond: { code: 429, retryAfterSec: 1 } });
    r.actuator.submit(decision("web", 4));
    const first = await r.next("web");
    assert.instance(first.error, ApiThrottledError);
    assert.is((first.error as ApiThrottledError).retryAfterMs, 1000);
    const t429 = performance.now();
    r.actuator.submit(decision("web", 5)); // arrives during the wait: replaces the retried one
    assert.is((await r.next("web", (o) => o === "applied")).outcome, "applied");
    const patchTimes = r.sim.audit.filter((a) => a.verb === "patch").map((a) => a.timeMs);
    assert.ok(patchTimes[1] - patchTimes[0] >= 990, `retried after ${patchTimes[1] - patchTimes[0]} ms`);
    assert.ok(performance.now() - t429 >= 900);
    assert.is(r.sim.get("apps", "deployments", NS, "web")!.spec.replicas, 5);
    // 503 without Retry-After: exponential backoff from the base.
    r.sim.inject({ match: { verb: "patch", subresource: "scale" }, times: 2, respond: { code: 503 } });
    r.actuator.submit(decision("web", 7));
    assert.is((await r.next("web", (o) => o === "applied")).outcome, "applied");
    assert.is(await metricValue(r.metrics, "foresight_allocator_actuation_errors_total", { pool: "web", error: "ApiThrottledError" }), 3);
    assert.is(r.sim.get("apps", "deployments", NS, "web")!.spec.replicas, 7);
  } finally {
    await r.close();
  }
});

test("404: the workload is gone: stops acting on the pool and says so", async () => {
  const r = await rig({ targets: [target("web", "scale")] });
  try {
    r.sim.create(deployment("web", { replicas: 2 }));
    r.sim.remove("apps", "deployments", NS, "web");
    r.actuator.submit(decision("web", 4));
    const { outcome, error } = await r.next("web");
    assert.is(outcome, "gone");
    assert.instance(error, WorkloadGoneError);
    const before = r.sim.audit.length;
    assert.is(r.actuator.submit(decision("web", 5)), "skipped");
    assert.is(r.sim.audit.length, before, "no request for a gone pool");
    assert.ok(r.lines.some((l) => l.level === 50 && /is gone: no longer acting on this pool/.test(l.msg)));
    assert.is(await metricValue(r.metrics, "foresight_allocator_pool_stopped", { pool: "web" }), 1);
    // A config change for the pool (new target) resumes it.
    r.sim.create(deployment("web2", { replicas: 1 }));
    r.actuator.setTargets([target("web", "scale", "web2")]);
    r.actuator.submit(decision("web", 3));
    assert.is((await r.next("web")).outcome, "applied");
  } finally {
    await r.close();
  }
});

test("API unreachable: keeps the current allocation, reports it, retries until the server answers", async () => {
  const port = await freePort();
  const r = await rig({ targets: [target("web", "scale")], sim: { port }, start: false });
  try {
    // The client was configured before the server listens: connection refused.
    const first = r.next("web");
    r.actuator.submit(decision("web", 4));
    const { error } = await first;
    assert.instance(error, KubeUnreachableError);
    assert.is(r.actuator.statuses()[0].state, "unreachable");
    assert.ok(r.lines.some((l) => /unreachable: keeping the current allocation/.test(l.msg)));
    r.sim.create(deployment("web", { replicas: 2 }));
    await r.sim.start();
    assert.is((await r.next("web", (o) => o === "applied")).outcome, "applied");
    assert.is(r.sim.get("apps", "deployments", NS, "web")!.spec.replicas, 4);
    assert.is(r.actuator.statuses()[0].state, "ok");
  } finally {
    await r.close();
  }
});

test("hpa-floor: the HPA's minReplicas follows the predictive requirement, capped at maxReplicas", async () => {
  const r = await rig({ targets: [target("web", "hpa-floor")] });
  try {
    r.sim.create(deployment("web", { replicas: 2 }));
    r.sim.create(hpa("web", 2, 10));
    r.actuator.submit(decision("web", 6, { predictiveReplicas: 6, reactiveReplicas: 3 }));
    assert.is((await r.next("web")).outcome, "applied");
    assert.is(r.sim.get("autoscaling", "horizontalpodautoscalers", NS, "web")!.spec.minReplicas, 6);
    assert.is(r.sim.get("apps", "deployments", NS, "web")!.spec.replicas, 2, "the HPA scales the workload, not Foresight");
    r.actuator.submit(decision("web", 12, { predictiveReplicas: 12 }));
    assert.is((await r.next("web")).outcome, "applied");
    assert.is(r.sim.get("autoscaling", "horizontalpodautoscalers", NS, "web")!.spec.minReplicas, 10);
    assert.ok(patches(r.sim.audit).every((a) => a.resource === "horizontalpodautoscalers"));
  } finally {
    await r.close();
  }
});

test("resize: running pods resized in place through pods/resize; the template is not changed", async () => {
  const r = await rig({ targets: [target("web", "resize")] });
  try {
    r.sim.create(deployment("web", { replicas: 3, requests: { cpu: "500m", memory: "512Mi" } }));
    r.actuator.submit(decision("web", 3, { cpuMillicores: 800, memoryMiB: 768 }));
    assert.is((await r.next("web")).outcome, "applied");
    const pods = r.sim.list("", "pods", NS);
    assert.is(pods.length, 3);
    for (const p of pods) {
      assert.equal((p.spec as any).containers[0].resources.requests, { cpu: "800m", memory: "768Mi" });
      assert.equal((p.status as any).containerStatuses[0].resources.requests, { cpu: "800m", memory: "768Mi" });
    }
    assert.is(r.sim.get("apps", "deployments", NS, "web")!.spec.template.spec.containers[0].resources.requests.cpu, "500m");
    assert.is(r.sim.audit.filter((a) => a.subresource === "resize").length, 3);
    assert.is(r.sim.audit.filter((a) => a.verb === "list" && a.resource === "pods").length, 1);
  } finally {
    await r.close();
  }
});

test("single flight: one request in flight per object; newer decisions replace queued ones", async () => {
  const r = await rig({ targets: [target("a", "scale"), target("b", "scale")] });
  try {
    r.sim.create(deployment("a", { replicas: 1 }));
    r.sim.create(deployment("b", { replicas: 1 }));
    r.sim.inject({ match: {}, times: Infinity, delayMs: 5 });
    const results: string[] = [];
    for (let i = 1; i <= 40; i++) {
      results.push(r.actuator.submit(decision("a", i)));
      results.push(r.actuator.submit(decision("b", 41 - i)));
    }
    await r.actuator.idle();
    r.sim.clearFaults();
    assert.is(r.sim.get("apps", "deployments", NS, "a")!.spec.replicas, 40, "the newest decision wins");
    assert.is(r.sim.get("apps", "deployments", NS, "b")!.spec.replicas, 1);
    assert.is(r.sim.maxConcurrentPerObject, 1);
    assert.is(r.actuator.queueStats.maxInFlightPerKey, 1);
    const replaced = results.filter((x) => x === "replaced").length;
    assert.is(replaced, 76, "all but the first and the last of each object's burst were coalesced");
    // a: its first decision (1) matches the cluster, so only the newest (40) is patched;
    // b: its first (40) and its newest (1) are patched. Everything between was coalesced.
    assert.is(patches(r.sim.audit).length, 3);
    assert.is(await metricValue(r.metrics, "foresight_allocator_decisions_coalesced_total", {}), 76);
  } finally {
    await r.close();
  }
});

test.run();
