// `foresight start --kubeconfig`: the allocator acts on the cluster a kubeconfig names. The cluster
// here is a Kubernetes API test server this test starts, reached over HTTP by the real client-node
// from the start process and its allocator child: by default (shadow) the pools' Deployments are
// only read and Events recorded; with --mode scale their replicas are patched; a missing workload
// or kubeconfig stops the run before anything starts.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeSim } from "../../src/kube-sim/index.ts";
import type { StartReport } from "../../src/start/report.ts";
import { processesWith, runStart } from "./_run.ts";

const dir = mkdtempSync(join(tmpdir(), "foresight-start-cluster-"));
const LOCK = join(dir, "start.lock");
const KUBECONFIG = join(dir, "kubeconfig.yaml");
const NS = "llm";
const POOLS = ["m-large", "m-mid"];
/** The Deployments' replicas before the run: the pools' minimum, so whatever the allocator changes is a scale-up (it never scales a running workload down inside its stabilization window). */
const INITIAL_REPLICAS = 1;
const SHORT_RUN = ["--duration", "15", "--clients", "4", "--max-rate", "100", "--models", POOLS.join(",")];

const sim = new KubeSim();
await sim.start();
for (const name of POOLS) {
  const labels = { app: name };
  sim.create({
    apiVersion: "apps/v1", kind: "Deployment", metadata: { name, namespace: NS, labels },
    spec: { replicas: INITIAL_REPLICAS, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: "server", image: "registry.example/llm:1" }] } } },
  });
}
// The current context points at nothing that answers; the runs select the test server with
// --context, so the flag is what reaches it. (JSON is YAML: client-node reads it as a kubeconfig.)
writeFileSync(
  KUBECONFIG,
  JSON.stringify({
    apiVersion: "v1", kind: "Config",
    // client-node speaks plain HTTP only with TLS verification off (the test server has no TLS).
    clusters: [{ name: "sim", cluster: { server: sim.url, "insecure-skip-tls-verify": true } }, { name: "nowhere", cluster: { server: "http://127.0.0.1:1", "insecure-skip-tls-verify": true } }],
    users: [{ name: "admin", user: { token: "admin-token" } }],
    contexts: [{ name: "sim", context: { cluster: "sim", user: "admin" } }, { name: "nowhere", context: { cluster: "nowhere", user: "admin" } }],
    "current-context": "nowhere",
  }),
);

const deploymentWrites = () => sim.writes.filter((w) => w.resource === "deployments");

/** Runs start against the test server with `args`; returns its report and the writes it made to Deployments. */
async function clusterRun(name: string, args: string[]): Promise<{ out: string; report: StartReport; writes: typeof sim.writes }> {
  const before = sim.writes.length;
  const reportDir = join(dir, name);
  const r = await runStart([...SHORT_RUN, "--kubeconfig", KUBECONFIG, "--context", "sim", "--report-dir", reportDir, ...args], LOCK);
  assert.is(r.code, 0, r.out + r.err);
  const state = /state: (\S+)/.exec(r.out)![1];
  assert.equal(processesWith(state), [], "nothing of the run is left");
  const report = JSON.parse(readFileSync(join(reportDir, "report.json"), "utf8")) as StartReport;
  return { out: r.out, report, writes: sim.writes.slice(before).filter((w) => w.resource === "deployments") };
}

test("no kubeconfig file: exit 2 naming it, nothing read", async () => {
  const r = await runStart(["--kubeconfig", join(dir, "nope.yaml")], LOCK);
  assert.is(r.code, 2, r.err);
  assert.match(r.err, /kubeconfig not found at .*nope\.yaml/);
  assert.not.ok(existsSync(LOCK), "lock released");
});

test("a pool without its Deployment: exit 2 naming it, before anything starts", async () => {
  const r = await runStart(["--kubeconfig", KUBECONFIG, "--context", "sim", "--namespace", "empty"], LOCK);
  assert.is(r.code, 2, r.err);
  assert.match(r.err, new RegExp(`Deployment empty/m-large not found on ${sim.url}`));
  assert.not.match(r.out, /state: /, "nothing started");
});

test("--context without --kubeconfig: exit 2", async () => {
  const r = await runStart(["--context", "sim"], LOCK);
  assert.is(r.code, 2, r.err);
  assert.match(r.err, /--context needs --kubeconfig/);
});

test("--kubeconfig alone is shadow mode: the workloads are read, never changed; decisions recorded as Events", async () => {
  const readsBefore = sim.audit.filter((a) => a.verb === "get" && a.subresource === "scale").length;
  const { out, report, writes } = await clusterRun("shadow", []);
  assert.match(out, /mode shadow \(decisions are computed and recorded as Events, nothing is scaled\)/);
  assert.match(out, new RegExp(`actuation \\(cluster ${sim.url}, kubeconfig ${KUBECONFIG}, context sim\\)\\s+ok`));
  assert.equal(writes, [], "no write to a Deployment");
  for (const name of POOLS) {
    assert.is(sim.get("apps", "deployments", NS, name)!.spec.replicas, INITIAL_REPLICAS, `${name} unchanged`);
    const reads = sim.audit.filter((a) => a.verb === "get" && a.subresource === "scale" && a.name === name && a.namespace === NS).length;
    assert.ok(reads >= 2, `${name}'s scale read by the check and the allocator: ${reads}`);
    assert.ok(sim.events().some((e) => e.reason === "ForesightShadowDecision" && e.involvedObject?.name === name), `${name}: shadow decision Event`);
  }
  assert.ok(sim.audit.filter((a) => a.verb === "get" && a.subresource === "scale").length > readsBefore);
  assert.is(report.summary.allocator.mode, "shadow");
  for (const name of POOLS) {
    const ser = report.timeline.pools[name];
    assert.ok(ser.replicasAllocated.length > 0);
    assert.ok(ser.replicasAllocated.every((x) => x === INITIAL_REPLICAS), `${name}: the replicas read back stay ${INITIAL_REPLICAS}: ${ser.replicasAllocated}`);
    assert.ok(ser.replicasDecided.some((x) => x >= 1), `${name}: decisions were made`);
  }
});

test("--mode scale: the allocator patches the Deployments' scale; the report shows what it set", async () => {
  const { out, report, writes } = await clusterRun("scale", ["--mode", "scale"]);
  assert.match(out, /mode scale/);
  assert.is(report.summary.allocator.mode, "scale");
  let changedPools = 0;
  let visiblePools = 0;
  for (const name of POOLS) {
    const mine = writes.filter((w) => w.name === name && w.namespace === NS);
    // Replicas go through the scale subresource; scale mode may also apply the pod template's
    // resources (server-side apply), which leaves replicas as they are.
    const scaled = mine.filter((w) => w.subresource === "scale");
    assert.ok(scaled.length > 0, `${name}'s scale was patched`);
    const set = new Set([INITIAL_REPLICAS, ...scaled.map((w) => w.object.spec.replicas as number)]);
    assert.ok(mine.every((w) => set.has(w.object.spec.replicas)), `${name}: no other write changed replicas`);
    const ser = report.timeline.pools[name];
    assert.ok(ser.replicasAllocated.every((x) => set.has(x)), `${name}: every replica count read back is one Foresight wrote: ${ser.replicasAllocated} vs ${[...set]}`);
    // A pool whose demand never needed more than it ran is written at its current replicas only.
    // The report's last point is the allocator's settled state after the load (src/start/system.ts),
    // so a scale-up applied in the load's last seconds is in it too.
    if (scaled.some((w) => w.object.spec.replicas !== INITIAL_REPLICAS)) changedPools++;
    if (ser.replicasAllocated.some((x) => x !== INITIAL_REPLICAS)) visiblePools++;
    assert.ok(set.has(sim.get("apps", "deployments", NS, name)!.spec.replicas), `${name}: ends at a value Foresight set`);
  }
  assert.ok(changedPools >= 1, `the allocator scaled a pool (${changedPools} of ${POOLS.length})`);
  assert.ok(visiblePools >= 1, `a change the allocator made is visible in the report (${visiblePools} pools)`);
});

test.after(async () => {
  await sim.stop();
  rmSync(dir, { recursive: true, force: true });
});
test.run();
