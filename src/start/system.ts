// `foresight start`: the whole system on this machine, on real traffic. It starts nats-server (or
// uses NATS_URL), the processor as a child process, an in-process gateway (HTTP in front of a stub
// model server, publishing telemetry), the live dashboard, and a load driver replaying real
// ServeGen clients through the gateway; then stops everything in order and prints a summary.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packageRootOf } from "../util/package-root.ts";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { Registry } from "prom-client";
import { NatsServer } from "../nats/server.ts";
import { connectNats } from "../nats/connect.ts";
import { TelemetryPublisher } from "../telemetry/publisher.ts";
import { userHash } from "../telemetry/hash.ts";
import { decodeForecastMessage, forecastRecords } from "../processor/forecasts.ts";
import { loadRateTrace, attachTokenStats, type ClientSeries } from "../forecast/trace.ts";
import { buildLoadPlan, busiestClients, LoadDriver, type LoadPlan, type LoadResult } from "../loadgen/index.ts";
import { DashboardHub, type DashboardPoint, type PoolPoint } from "../dashboard/index.ts";
import { ObsServer } from "../obs/http.ts";
import { GrantService } from "../throttle/service.ts";
import { ThrottleClient } from "../throttle/client.ts";
import { poolsStateSubject, type PoolsState } from "../allocator/kube/service.ts";
import { Supervised } from "./supervisor.ts";
import { demoConfig, DEMO_HORIZON_BUCKETS, type DemoPool, type StartMode } from "./demo.ts";
import { Gateway } from "./gateway.ts";
import { PoolTracker, poolCapacities, type PoolSummary } from "./pools.ts";
import { requireFile, requireNatsServer, requirePortFree, takeLock } from "./preconditions.ts";
import { requireWorkloads, SIM_TARGET } from "./cluster.ts";
import { buildReport, writeReport } from "./report.ts";

const DAY_SEC = 86_400;
/** Telemetry events recorded before the load, to warm the publisher path and prove it works. */
const WARMUP_EVENTS = 4096;

/** Options of {@link runSystem}; every one is a `foresight start` flag. */
export interface StartOptions {
  /** Per-client rate trace. Default ../shared/data/servegen_client_rate_10min.csv.gz. */
  tracePath: string;
  /** Per-client token statistics. Default ../shared/data/servegen_client_tokens_6h.csv.gz. */
  tokensPath: string;
  /** Models (pools) replayed. Default m-large, m-mid, m-small. */
  models: string[];
  /** Busiest clients taken per model. Default 15. */
  clientsPerModel: number;
  /** Trace second the replay starts at. Default day 7, 09:00. */
  traceStartSec: number;
  /** Trace seconds per wall second. Default 60. */
  speedup: number;
  /** Wall time of the load, ms. Default 150 000. */
  durationMs: number;
  /** Cap on the offered load, requests per wall second (the trace is thinned above it). Default 300. */
  maxRatePerSec: number;
  /** Seed of the load plan. Default 1. */
  seed: number;
  /** Dashboard (and /metrics) port; 0 = any free port. Default 8090. */
  port: number;
  /** Dashboard bind address. Default 127.0.0.1. */
  host: string;
  /** Use this NATS server instead of starting one. Default env NATS_URL. */
  natsUrl?: string;
  /** Engine bucket width, ms. Default 5 000 (60× compressed minute buckets... 5 trace minutes). */
  bucketWidthMs: number;
  /** Processor tick period, ms. Default 5 000. */
  tickIntervalMs: number;
  /** Telemetry partitions. Default 2. */
  partitions: number;
  /** Kill the processor with SIGKILL this far into the load, ms (fault demonstration). Default off. */
  killProcessorAtMs?: number;
  /** Where status lines and the summary go. Default process.stdout. */
  out: NodeJS.WritableStream;
  /** Lock file guarding against a second copy. */
  lockFile?: string;
  /** Abort signal (Ctrl-C). */
  signal?: AbortSignal;
  /** Directory the run report (report.html, report.json) is written to at the end; undefined = none. Default ./foresight-run. */
  reportDir?: string;
  /** The command line, as the report records it. Default "foresight start". */
  command?: string;
  /**
   * A real cluster for the allocator: its kubeconfig file and optional context. Default: none, the
   * allocator acts on the in-process Kubernetes API test server.
   */
  cluster?: { kubeconfigPath: string; context?: string };
  /** What the allocator does with each pool's workload. Default "scale" on the test server, "shadow" on a cluster. */
  mode?: StartMode;
  /** Namespace of the pools' Deployments (one per pool, named after its model). Default "llm". */
  namespace?: string;
}

/** Namespace of the pools' workloads when none is given. */
export const DEFAULT_START_NAMESPACE = "llm";

/** What a run produced. */
export interface StartSummary {
  wallMs: number;
  plan: { requests: number; clients: number; thinning: number; speedup: number; traceStart: string };
  load: { sent: number; ok: number; throttled: number; errors: number; skipped: number; p50Ms: number; p99Ms: number };
  telemetry: { recorded: number; acked: number; dropped: number };
  forecasts: { ticks: number; records: number; usersForecast: number; coverage: number; exceedances: number };
  pools: PoolSummary[];
  processor: { restarts: number; resumedFromCheckpoint: boolean; restoredSeqs: number[] };
  /** `target`: where the allocator acted (the test API server or a cluster); `mode`: shadow or scale. */
  allocator: { stateMessages: number; restarts: number; dataComplete: boolean; actuation: string; target: string; mode: StartMode };
  throttle: { checks: number; denied: number; safeLimitDecisions: number; exceedancesPublished: number; grantTicks: number };
  interrupted: boolean;
  /** Where the run report was written (absolute paths), when it was. */
  report?: { dir: string; htmlPath: string; jsonPath: string };
}

/** The built CLI is missing. */
export class CliNotBuiltError extends Error {
  override name = "CliNotBuiltError";
}

function cliPath(): string {
  // The children run the built CLI, <package>/dist/cli.js, from the sources or the bundle alike.
  const p = join(packageRootOf(import.meta.url), "dist", "cli.js");
  if (!existsSync(p)) throw new CliNotBuiltError(`built CLI not found at ${p}: run "npm run build"`);
  return p;
}

/** Runs the system; resolves with the summary after everything it started has stopped. */
export async function runSystem(o: StartOptions): Promise<StartSummary> {
  // Preconditions first: a failure here leaves nothing running.
  requireFile(o.tracePath, "rate trace");
  requireFile(o.tokensPath, "token statistics");
  if (!o.natsUrl) requireNatsServer();
  await requirePortFree(o.host, o.port);
  const namespace = o.namespace ?? DEFAULT_START_NAMESPACE;
  const mode: StartMode = o.mode ?? (o.cluster ? "shadow" : "scale");
  // A cluster's workloads must exist before anything starts (the allocator would only report them gone).
  const target = o.cluster ? await requireWorkloads(o.cluster, namespace, o.models) : SIM_TARGET;
  const cli = cliPath();
  const releaseLock = takeLock(o.lockFile);

  const started = performance.now();
  const say = (s: string) => o.out.write(s + "\n");
  const cleanup: (() => Promise<void> | void)[] = [releaseLock];
  const tmp = mkdtempSync(join(tmpdir(), "foresight-start-"));
  cleanup.push(() => rmSync(tmp, { recursive: true, force: true }));
  let interrupted = false;
  try {
    if (o.cluster) say(`Kubernetes: ${target}, pools ${o.models.map((m) => `${namespace}/${m}`).join(", ")}, mode ${mode}${mode === "shadow" ? " (decisions are computed and recorded as Events, nothing is scaled)" : ""}`);
    // Traffic: the busiest clients of each model, from day 7 on (days 0-6 are history).
    say(`loading ${o.models.join(", ")} clients from ${o.tracePath} …`);
    const wanted = new Set(o.models);
    const all = await loadRateTrace(o.tracePath, { filter: (k) => wanted.has(k.split(":")[0]) });
    await attachTokenStats(all, o.tokensPath);
    const spanSec = (o.durationMs / 1000) * o.speedup;
    const chosen: ClientSeries[] = [];
    for (const m of o.models) chosen.push(...busiestClients(all.filter((s) => s.model === m), o.clientsPerModel, o.traceStartSec, o.traceStartSec + spanSec));
    const plan: LoadPlan = buildLoadPlan(chosen, { speedup: o.speedup, durationMs: o.durationMs, traceStartSec: o.traceStartSec, maxRatePerSec: o.maxRatePerSec, seed: o.seed });
    const traceStart = `day ${Math.floor(o.traceStartSec / DAY_SEC)} ${new Date((o.traceStartSec % DAY_SEC) * 1000).toISOString().slice(11, 16)}`;
    say(`plan: ${plan.count.toLocaleString()} requests from ${chosen.length} clients, trace ${traceStart} at ${o.speedup}× (${(spanSec / 3600).toFixed(1)} trace hours in ${(o.durationMs / 1000).toFixed(0)} s), thinned to ${(plan.thinning * 100).toFixed(1)} %`);

    // NATS.
    let natsUrl = o.natsUrl;
    if (!natsUrl) {
      mkdirSync(join(tmp, "nats"));
      const server = await NatsServer.start({ dir: join(tmp, "nats") });
      cleanup.push(() => server.stop());
      natsUrl = server.url;
    }
    const prefix = `fs${process.pid}`;
    const nc: NatsConnection = await connectNats({ servers: [natsUrl], name: "foresight-start" });
    cleanup.push(async () => {
      await nc.drain().catch(() => nc.close());
    });

    // One pool per model; a replica serves what keeps the pool's mean planned load at ~10 replicas.
    const capacity = poolCapacities(plan, 10);
    const pools: DemoPool[] = [...capacity.entries()].map(([name, r]) => ({ name, requestsPerSecPerReplica: r, users: plan.clients.filter((_, i) => plan.models[i] === name) }));
    // Plan limit: generous (3× the busiest client's mean rate), so refusals come from the rule
    // (over forecast while the pool is short), not from the plan.
    const perClient = new Float64Array(plan.clients.length);
    for (let k = 0; k < plan.count; k++) perClient[plan.client[k]]++;
    const busiest = Math.max(...perClient) / (plan.durationMs / 1000);
    const planRequestsPerSec = Math.max(10, Math.ceil(3 * busiest));
    const configPath = join(tmp, "foresight.json");
    writeFileSync(
      configPath,
      JSON.stringify(
        demoConfig({ prefix, mode, namespace, partitions: o.partitions, bucketWidthMs: o.bucketWidthMs, tickIntervalMs: o.tickIntervalMs, checkpointIntervalMs: 10_000, leaseTtlMs: 3_000, speedup: o.speedup, pools, planRequestsPerSec, safeRequestsPerSec: Math.max(5, Math.ceil(busiest)) }),
        null,
        2,
      ),
    );

    // Processor (child process; restarted by the supervisor if it dies).
    const restoredSeqs: number[] = [];
    let acquired = 0;
    let readyResolve: () => void = () => {};
    const ready = new Promise<void>((r) => (readyResolve = r));
    const processor = new Supervised({
      name: "processor",
      command: process.execPath,
      args: [cli, "serve", "--config", configPath, "--servers", natsUrl, "--http-port", "0", "--process-id", "start-processor"],
      onLine: (line) => {
        if (!line.includes("partition acquired")) return;
        try {
          const j = JSON.parse(line) as { restoredSeq?: number };
          if (processor.restarts > 0) restoredSeqs.push(j.restoredSeq ?? 0);
        } catch {
          /* not JSON */
        }
        if (++acquired === o.partitions) readyResolve();
      },
      onExit: (code, signal) => say(`processor exited (${signal ?? `code ${code}`}): restarting; it resumes from its last checkpoint`),
    });
    processor.start();
    cleanup.push(() => processor.stop());
    await Promise.race([ready, new Promise((_, rej) => setTimeout(() => rej(new Error("processor did not take its partitions within 60 s")), 60_000).unref())]);

    // Allocator (child process): leader lease, sums the processors' partial demand, decides
    // replicas per pool, applies them to the Kubernetes API test server, publishes pool state.
    const poolState: { last?: PoolsState; messages: number } = { messages: 0 };
    let firstState: () => void = () => {};
    const stateSeen = new Promise<void>((r) => (firstState = r));
    /** Waiters for a count of state messages (the report's final point waits for the allocator's settled state). */
    const stateWaiters: { count: number; resolve: () => void }[] = [];
    const stateSub = nc.subscribe(poolsStateSubject(prefix), {
      callback: (err, m) => {
        if (err) return;
        try {
          poolState.last = JSON.parse(new TextDecoder().decode(m.data)) as PoolsState;
          poolState.messages++;
          firstState();
          for (let i = stateWaiters.length - 1; i >= 0; i--) {
            if (poolState.messages >= stateWaiters[i].count) stateWaiters.splice(i, 1)[0].resolve();
          }
        } catch {
          /* not ours */
        }
      },
    });
    /** Resolves when `n` more state messages have arrived, or after timeoutMs. */
    const moreStates = (n: number, timeoutMs: number) =>
      new Promise<void>((resolve) => {
        const t = setTimeout(resolve, timeoutMs);
        stateWaiters.push({ count: poolState.messages + n, resolve: () => (clearTimeout(t), resolve()) });
      });
    cleanup.push(() => stateSub.unsubscribe());
    const allocator = new Supervised({
      name: "allocator",
      command: process.execPath,
      // --no-grants: this supervisor runs its own grant service below (users mapped to pools by
      // the replayed clients' models, which the allocator's config rules do not know).
      args: [cli, "allocate", ...kubeArgs(o.cluster), "--config", configPath, "--servers", natsUrl, "--http-port", "0", "--no-kv", "--no-grants", "--process-id", "start-allocator"],
      onExit: (code, signal) => say(`allocator exited (${signal ?? `code ${code}`}): restarting`),
    });
    allocator.start();
    cleanup.push(() => allocator.stop());

    // Grants: forecasts → per-user grants and pool state on JetStream, read by the gateway's ThrottleClient.
    const hashToClient = new Map<string, number>();
    plan.clients.forEach((key, i) => {
      const h = userHash(key);
      hashToClient.set(`${h.lo}:${h.hi}`, i);
    });
    const poolIndex = new Map(pools.map((p, i) => [p.name, i]));
    const capacityNow = (): { capacityReqPerSec: number }[] =>
      pools.map((p) => {
        const st = poolState.last?.pools.find((x) => x.pool === p.name);
        return { capacityReqPerSec: st ? st.capacityRequestsPerSec : p.requestsPerSecPerReplica };
      });
    const throttleSettings = { plans: { default: { requestsPerSec: planRequestsPerSec } }, safeLimits: { default: { requestsPerSec: Math.max(5, Math.ceil(busiest)) } }, burstFactor: 1.5 };
    const grants = new GrantService({
      ...throttleSettings,
      subjectPrefix: prefix,
      partitions: o.partitions,
      grantTtlMs: 30_000,
      grantRefreshMs: 2_000,
      poolStateIntervalMs: 500,
      usersPerPartition: 4096,
      pools: capacityNow,
      poolOf: (lo, hi) => {
        const ci = hashToClient.get(`${lo}:${hi}`);
        return ci === undefined ? 0 : (poolIndex.get(plan.models[ci]) ?? 0);
      },
    });
    await grants.start(nc);
    cleanup.push(() => grants.stop());
    const throttle = new ThrottleClient({ ...throttleSettings, subjectPrefix: prefix, partitions: o.partitions, maxUsers: 4096, gatewayId: "start-gateway" });
    await throttle.start(nc);
    cleanup.push(() => throttle.close());
    await Promise.race([stateSeen, new Promise((_, rej) => setTimeout(() => rej(new Error("allocator published no pool state within 60 s")), 60_000).unref())]);

    // Forecasts from the processor, keyed by user hash.
    const tracker = new PoolTracker(plan, capacity, DEMO_HORIZON_BUCKETS);
    const forecastStats = { ticks: new Set<number>(), records: 0, users: new Set<number>() };
    const sub: Subscription = nc.subscribe(`${prefix}.forecasts.*`);
    cleanup.push(() => sub.unsubscribe());
    void (async () => {
      for await (const m of sub) {
        let msg;
        try {
          msg = decodeForecastMessage(m.data);
        } catch {
          continue;
        }
        forecastStats.ticks.add(msg.tickTimeMs);
        for (const r of forecastRecords(msg)) {
          const ci = hashToClient.get(`${r.userHashLo}:${r.userHashHi}`);
          if (ci === undefined) continue;
          forecastStats.records++;
          forecastStats.users.add(ci);
          tracker.onForecast(ci, r.ratePerSec, r.upperPerSec, r.observedPerSec, msg.tickTimeMs);
        }
      }
    })();

    // Gateway: HTTP in front of the stub model, publishing telemetry.
    const publisher = new TelemetryPublisher(nc, { subjectPrefix: prefix, partitions: o.partitions, flushIntervalMs: 50 });
    cleanup.push(() => publisher.close(10_000).catch(() => undefined));
    const gateway = new Gateway({ publisher, limiter: throttle, onRequest: (user, tokens, throttled) => tracker.onRequest(user, tokens, throttled) });
    const gatewayPort = await gateway.start();
    cleanup.push(() => gateway.stop());
    // Self-test and warm-up of the telemetry path: the first publishes of a cold process are slow
    // (module loading, JIT), which would show as seconds of gateway latency at the start of the load.
    // These events belong to a user outside the plan (ignored by the pool view) and must be acked.
    for (let i = 0; i < WARMUP_EVENTS; i++) publisher.record({ user: "foresight-start-selftest", inputTokens: 1 });
    await publisher.flush(30_000);

    // Dashboard.
    const hub = new DashboardHub();
    const obs = new ObsServer({ port: o.port, host: o.host, registry: new Registry(), health: () => ({ ok: true, checks: {} }), ready: () => ({ ok: true, checks: {} }), routes: hub.routes() });
    const dashPort = await obs.start();
    cleanup.push(async () => {
      hub.close();
      await obs.stop();
    });
    say(`state: ${tmp}`);
    say(`dashboard: http://${o.host === "0.0.0.0" ? "127.0.0.1" : o.host}:${dashPort}/dashboard   gateway: http://127.0.0.1:${gatewayPort}   nats: ${natsUrl}`);

    // Load.
    const driver = new LoadDriver(plan, { url: `http://127.0.0.1:${gatewayPort}` });
    const onAbort = () => {
      interrupted = true;
      driver.stop();
    };
    o.signal?.addEventListener("abort", onAbort);
    if (o.signal?.aborted) onAbort();
    const loadStart = Date.now();
    let killTimer: NodeJS.Timeout | undefined;
    if (o.killProcessorAtMs !== undefined) {
      killTimer = setTimeout(() => {
        say(`fault injection: SIGKILL to the processor (pid ${processor.pid})`);
        processor.kill("SIGKILL");
      }, o.killProcessorAtMs);
    }
    const isTty = (o.out as NodeJS.WriteStream).isTTY === true;
    let lastStatus = 0;
    const statusTimer = setInterval(() => {
      const p = tracker.point(publisher.stats(), driver.result, forecastStats.users.size, poolState.last);
      hub.push(p);
      const line = statusLine(p, driver, Date.now() - loadStart);
      if (isTty) o.out.write(`\r${line}\x1b[K`);
      else if (Date.now() - lastStatus >= 10_000) {
        lastStatus = Date.now();
        say(line);
      }
    }, 1000);
    let result: LoadResult;
    try {
      result = await driver.run();
    } finally {
      clearInterval(statusTimer);
      clearTimeout(killTimer);
      o.signal?.removeEventListener("abort", onAbort);
      if (isTty) o.out.write("\n");
    }
    // Let the last frames reach the processor and one more tick forecast them.
    await publisher.flush(10_000).catch(() => undefined);
    if (!interrupted) {
      await tracker.waitForTickAfter(Date.now(), o.tickIntervalMs * 3);
      // The timeline ends with the allocator's settled state: its state carries the replicas read
      // back at the start of a decision, so two more decisions show a change it applied near the
      // end of the load (without this point, a scale-up in the last seconds was missing from the
      // report while the cluster had it).
      await moreStates(2, 10_000);
      hub.push(tracker.point(publisher.stats(), driver.result, forecastStats.users.size, poolState.last));
    }

    const pub = publisher.stats();
    const summary: StartSummary = {
      wallMs: performance.now() - started,
      plan: { requests: plan.count, clients: plan.clients.length, thinning: plan.thinning, speedup: plan.speedup, traceStart },
      load: {
        sent: result.sent,
        ok: result.ok,
        throttled: result.throttled,
        errors: result.errors,
        skipped: result.skipped,
        p50Ms: result.latencyUs.getValueAtPercentile(50) / 1000,
        p99Ms: result.latencyUs.getValueAtPercentile(99) / 1000,
      },
      telemetry: { recorded: pub.recordedEvents, acked: pub.ackedEvents, dropped: pub.droppedEvents },
      forecasts: { ticks: forecastStats.ticks.size, records: forecastStats.records, usersForecast: forecastStats.users.size, coverage: tracker.coverage(), exceedances: tracker.exceedances },
      pools: tracker.summaries(),
      allocator: { stateMessages: poolState.messages, restarts: allocator.restarts, dataComplete: poolState.last?.dataComplete ?? false, actuation: [...new Set(poolState.last?.pools.map((x) => x.actuation) ?? [])].join(", "), target, mode },
      throttle: { checks: throttle.stats().checks, denied: throttle.stats().denied, safeLimitDecisions: throttle.stats().safeLimitDecisions, exceedancesPublished: throttle.stats().exceedances, grantTicks: grants.stats().ticks },
      processor: { restarts: processor.restarts, resumedFromCheckpoint: restoredSeqs.some((s) => s > 0), restoredSeqs },
      interrupted,
    };
    if (o.reportDir !== undefined) {
      const report = buildReport({ command: o.command ?? "foresight start", summary, requestsPerSecPerReplica: capacity, latencyUs: result.latencyUs, latencyUsByPool: result.latencyUsByModel, timeline: tracker.timeline() });
      summary.report = writeReport(o.reportDir, report);
    }
    return summary;
  } finally {
    // Stop in reverse order of start.
    for (const fn of cleanup.reverse()) {
      try {
        await fn();
      } catch {
        /* keep stopping the rest */
      }
    }
  }
}

/** The allocator's Kubernetes flags: the in-process test server, or the user's kubeconfig. */
function kubeArgs(cluster: StartOptions["cluster"]): string[] {
  if (!cluster) return ["--sim"];
  return ["--kubeconfig", cluster.kubeconfigPath, ...(cluster.context ? ["--context", cluster.context] : [])];
}

function statusLine(p: DashboardPoint, driver: LoadDriver, elapsedMs: number): string {
  const pools = p.pools.map((x: PoolPoint) => `${x.pool} ${x.replicasDecided}/${x.replicasReactive}`).join(" ");
  return `${(elapsedMs / 1000).toFixed(0).padStart(4)} s ${(driver.progress * 100).toFixed(0).padStart(3)} % | ${p.health["events/s"]} ev/s | users ${p.health["users tracked"]} | forecasts ${p.health["forecast ticks"]} | replicas Foresight/reactive ${pools} | throttles ${driver.result.throttled} | exceedances ${p.health["exceedances"]}`;
}
