// End to end through real parts: telemetry → Processor (WASM engine) → each tick's forecasts summed
// per pool into partials on <prefix>.demand.<p> (the wiring `foresight serve` uses) → the allocator
// leader sums them → policy → actuator → the Kubernetes API test server, and pool state out.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { KubeConfig } from "@kubernetes/client-node";
import { NatsServer } from "../../../src/nats/server.ts";
import { createLogger } from "../../../src/obs/logger.ts";
import { encodeFrame } from "../../../src/telemetry/frame.ts";
import { EVENT_RECORD_BYTES } from "../../../src/engine/layout.ts";
import { writeRecord } from "../../../src/telemetry/event.ts";
import { Processor, createWasmEngineFactory } from "../../../src/processor/index.ts";
import { normalQuantile } from "../../../src/engine/options.ts";
import { POOL_POLICY_DEFAULTS } from "../../../src/allocator/policy.ts";
import { KubeSim } from "../../../src/kube-sim/index.ts";
import { AllocatorService, type AllocatorPoolConfig, type PoolsState } from "../../../src/allocator/kube/service.ts";
import { DemandPartialBuilder, decodeDemandPartial, demandSubject, encodeDemandPartial, type DemandPartial } from "../../../src/allocator/kube/partials.ts";
import { lastSeqs, makeUsers, waitFor } from "../../processor/support.ts";
import { NS, deployment } from "./support.ts";

const T0 = 1_700_000_000_000;
const quiet = createLogger({ level: "silent" });

function pool(name: string, users: string[], isDefault: boolean): AllocatorPoolConfig {
  return {
    ...POOL_POLICY_DEFAULTS, name, mode: "scale",
    costModel: { requestsPerSecPerReplica: 2, cpuPerReplicaMillicores: 250, memoryPerReplicaMiB: 256 },
    minReplicas: 1, maxReplicas: 30, stabilizationWindowSec: 0, decisionIntervalMs: 3_600_000,
    workload: { kind: "Deployment", namespace: NS, name },
    match: { routes: [], models: [], plans: [], segments: [], users, default: isDefault },
  };
}

test("telemetry → processor partials → allocator leader → Kubernetes patches and pool state", async () => {
  const srv = await NatsServer.start();
  const sim = new KubeSim();
  await sim.start();
  const prefix = "e2ealloc";
  const P = 2;
  const users = makeUsers(6, P, "alloc");
  const pools = [pool("chat", [], true), pool("vip", [users[5].key], false)];
  sim.create(deployment("chat", { replicas: 1 }), { manager: "foresight" });
  sim.create(deployment("vip", { replicas: 1 }), { manager: "foresight" });
  const builder = new DemandPartialBuilder(pools, normalQuantile(0.95));
  let now = T0;
  let proc: Processor | undefined;
  const nc = await connect({ servers: srv.url });
  const kc = new KubeConfig();
  kc.loadFromOptions(sim.kubeConfigOptions());
  let alloc: AllocatorService | undefined;
  try {
    proc = await Processor.start({
      nats: { servers: [srv.url] }, prefix, partitions: P, engineFactory: createWasmEngineFactory({ bucketWidthMs: 1000, allowedLatenessMs: 2000, capacityUsers: 1024 }),
      capacityUsers: 2048, tickIntervalMs: 100, checkpointIntervalMs: 60_000, leaseTtlMs: 3000, httpPort: -1, clock: () => now, log: quiet,
      onForecasts: (p, t, records, count) => proc?.connection.publish(demandSubject(prefix, p), encodeDemandPartial(builder.build(p, t, records, count))),
    });
    alloc = await AllocatorService.start({
      nats: { servers: [srv.url] }, prefix, partitions: P, pools, cluster: { maxCpuMillicores: 64_000, maxMemoryMiB: 262_144, maxReplicasTotal: 100 },
      kubeConfig: kc, processId: "e2e-allocator", leaseTtlMs: 3000, log: quiet, upperQuantile: 0.95, actuator: { events: false },
    });
    const partials: DemandPartial[] = [];
    const sub = nc.subscribe(`${prefix}.demand.*`, { callback: (_e, m) => void partials.push(decodeDemandPartial(m.data)) });
    // User i sends (i + 1) requests/s for 8 s: chat gets 1+2+3+4+5 = 15 req/s, vip (user 5) 6 req/s.
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const rec = new Uint8Array(6 * EVENT_RECORD_BYTES);
    const view = new DataView(rec.buffer);
    // Drives the processor's clock and waits until both partitions ticked at that time (as wall time would).
    const tickTo = (t: number) => {
      now = t;
      return waitFor(`partials of the tick at ${t}`, () => new Set(partials.filter((x) => x.tickTimeMs === t).map((x) => x.partition)).size === P);
    };
    for (let sec = 0; sec < 8; sec++) {
      await tickTo(T0 + sec * 1000 + 2000);
      for (const [i, u] of users.entries()) {
        for (let j = 0; j <= i; j++) {
          writeRecord(view, j * EVENT_RECORD_BYTES, {
            userHashLo: u.lo, userHashHi: u.hi, timeMs: T0 + sec * 1000 + Math.floor((j * 1000) / (i + 1)) + 1,
            inputTokens: 100, outputTokens: 50, routeHash: 1, ipHash: 2, uaHash: 3, latencyMs: 10, bytes: 100, status: 200, flags: 0,
          });
        }
        await js.publish(`${prefix}.telemetry.${u.partition}`, encodeFrame(rec, i + 1));
      }
      const want = await lastSeqs(jsm, proc.names, P);
      await waitFor("processor to catch up", () => want.every((seq, p) => (proc!.worker(p)?.lastAppliedSeq ?? 0) >= seq));
    }
    const tickAt = T0 + 8_000 + 2_000 + 1;
    await tickTo(tickAt); // closes the last second
    sub.unsubscribe();
    const last = [0, 1].map((p) => partials.filter((x) => x.tickTimeMs === tickAt && x.partition === p).at(-1)!);
    const observed = [0, 1].map((i) => last.reduce((s, x) => s + x.observedPerSec[i], 0));
    assert.equal(observed, [15, 6], "observed pool load summed over the partitions' partials");
    await new Promise((r) => setTimeout(r, 200));
    const states: PoolsState[] = [];
    const s2 = nc.subscribe(`${prefix}.pools.state`, { callback: (_e, m) => void states.push(JSON.parse(m.string())) });
    await nc.flush(); // the subscription is registered at the server before the state is published
    const decisions = (await alloc.decideNow())!;
    assert.ok(decisions, "the only allocator leads");
    await alloc.actuator.idle();
    const chat = decisions.find((d) => d.pool === "chat")!;
    const vip = decisions.find((d) => d.pool === "vip")!;
    assert.ok(chat.replicas >= Math.ceil(15 / 2), `chat: ${chat.replicas} replicas for 15 req/s at 2 req/s per replica`);
    assert.ok(vip.replicas >= 3, `vip: ${vip.replicas} replicas for 6 req/s`);
    assert.is(sim.get("apps", "deployments", NS, "chat")!.spec.replicas, chat.replicas);
    assert.is(sim.get("apps", "deployments", NS, "vip")!.spec.replicas, vip.replicas);
    await waitFor("pool state", () => states.length > 0);
    s2.unsubscribe();
    assert.is(states[0].pools.find((p) => p.pool === "chat")!.loadRequestsPerSec, 15);
    assert.is(states[0].pools.find((p) => p.pool === "vip")!.activeUsers, 1);
  } finally {
    await alloc?.stop();
    await proc?.stop();
    await nc.close();
    await sim.stop();
    await srv.dispose();
  }
});

test.run();
