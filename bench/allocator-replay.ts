// The allocator on real traffic (ServeGen, ../shared/data/servegen_client_rate_10min.csv.gz):
//
// 1. Pool upper bound, measured: each language model (m-large, m-mid, m-small) is one pool of its
//    clients. The real engine (WASM, the processor's ensemble forecaster, 10-minute buckets,
//    quantile 0.95) forecasts every client one bucket ahead; the pool bound is formed by
//    "variance" (Σμ + z√Σσ², at several z), "sum" (Σ per-user upper bounds), "blend", and
//    "aggregate" (the pool's own total series forecast by the engine as a key of its own).
//    Scored on days 7–13 (days 0–6 warm the engine up): coverage (share of windows whose actual
//    total is within the bound) against capacity (mean bound / mean actual).
// 2. A replayed week of one pool through the live policy (src/allocator/policy.ts): decisions
//    every 15 s, scale-ups ready 120 s later, R = median per-second demand of days 0–6 / 20 req/s
//    per replica (the replay issue's model); Foresight (max(predictive, HPA floor, active)) against
//    the HPA v2 floor alone; per day: replica-hours, max replicas, scaling actions, seconds short.
//
//   npm run bench:allocator-replay [-- --pool m-large]
// Writes bench/results/allocator-replay.json.
import { parseArgs } from "node:util";
import { combineUpper, type DemandMethod } from "../src/allocator/demand.ts";
import { HpaRecommender } from "../src/allocator/hpa.ts";
import { POOL_POLICY_DEFAULTS, PoolPolicy, type PoolPolicyConfig } from "../src/allocator/policy.ts";
import { normalQuantile } from "../src/engine/options.ts";
import { replayThroughEngine } from "../src/forecast/engine-replay.ts";
import { DEFAULT_TRACE_PATH, loadRateTrace, type ClientSeries } from "../src/forecast/trace.ts";
import { writeBenchJson } from "./env.ts";

const { values: args } = parseArgs({
  options: {
    pool: { type: "string", default: "m-large" },
    trace: { type: "string", default: DEFAULT_TRACE_PATH },
    out: { type: "string", default: "bench/results/allocator-replay.json" },
    engine: { type: "string", default: "wasm" },
  },
});

const BUCKET_SEC = 600;
const DAY = 144;
const Q = 0.95;
const Z = normalQuantile(Q);
const MODELS = ["m-large", "m-mid", "m-small"];
const started = Date.now();

const all = await loadRateTrace(args.trace!, { filter: (k) => MODELS.some((m) => k.startsWith(m + ":")) });
const T = DAY * 14;
// One synthetic key per pool: the pool's total, forecast by the engine like any user.
const totals: ClientSeries[] = MODELS.map((m) => {
  const req = new Float64Array(T);
  for (const s of all) if (s.model === m) for (let t = 0; t < Math.min(T, s.requests.length); t++) req[t] += s.requests[t];
  return { key: `pool-total-${m}:0`, model: `pool-total-${m}`, clientId: 0, requests: req, iatCv: new Float64Array(T), tokensPerRequest: new Float64Array(T), totalRequests: req.reduce((a, b) => a + b, 0) };
});
const series = [...all, ...totals];
console.log(`loaded ${all.length} clients of ${MODELS.join(", ")}; forecasting with the ${args.engine} engine (ensemble, horizons 1 and 2 buckets, q ${Q}) ...`);
const models = await replayThroughEngine(series, { engine: args.engine as "wasm" | "ts", horizons: [1, 2], quantile: Q, ensemble: true });
const fc = models["ensemble-engine"].byKey;
console.log(`forecasts ready in ${((Date.now() - started) / 1000).toFixed(0)} s`);

// Per pool and window: Σ mean, Σ σ², Σ upper (all in requests per window), and the actual total.
interface PoolSeries {
  mean: Float64Array[];
  variance: Float64Array[];
  upperSum: Float64Array[];
  aggUpper: Float64Array[];
  actual: Float64Array;
  clients: number;
}
function poolSeries(model: string): PoolSeries {
  const H = 2;
  const o: PoolSeries = {
    mean: [0, 1].map(() => new Float64Array(T)),
    variance: [0, 1].map(() => new Float64Array(T)),
    upperSum: [0, 1].map(() => new Float64Array(T)),
    aggUpper: [0, 1].map(() => new Float64Array(T)),
    actual: new Float64Array(T),
    clients: 0,
  };
  for (const s of all) {
    if (s.model !== model) continue;
    o.clients++;
    const f = fc.get(s.key)!;
    for (let h = 0; h < H; h++)
      for (let t = 0; t < Math.min(T, s.requests.length); t++) {
        const mu = f.preds[h][t], up = f.uppers![h][t];
        const sd = up > mu ? (up - mu) / Z : 0;
        o.mean[h][t] += mu;
        o.variance[h][t] += sd * sd;
        o.upperSum[h][t] += up;
      }
    for (let t = 0; t < Math.min(T, s.requests.length); t++) o.actual[t] += s.requests[t];
  }
  const agg = fc.get(`pool-total-${model}:0`)!;
  for (let h = 0; h < H; h++) o.aggUpper[h].set(agg.uppers![h].subarray(0, T));
  return o;
}

// ---- 1. Coverage vs capacity of each bound.
interface BoundRow {
  pool: string;
  clients: number;
  bound: string;
  coveragePct: number;
  capacityRatio: number;
}
const boundRows: BoundRow[] = [];
const gapHours: Record<string, number> = {};
const pools: Record<string, PoolSeries> = {};
for (const m of MODELS) {
  const ps = (pools[m] = poolSeries(m));
  const sorted = [...ps.actual.subarray(0, 7 * DAY)].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  const scored: number[] = [];
  for (let t = 7 * DAY; t < T; t++) if (ps.actual[t] >= 0.05 * median) scored.push(t);
  gapHours[m] = ((7 * DAY - scored.length) * BUCKET_SEC) / 3600;
  const variants: { name: string; bound: (t: number) => number }[] = [
    ...[Z, normalQuantile(0.99), normalQuantile(0.999)].map((z) => ({
      name: `variance z=${z.toFixed(2)}`,
      bound: (t: number) => combineUpper(ps.mean[0][t], ps.variance[0][t], ps.upperSum[0][t], { method: "variance", z }),
    })),
    { name: "sum of per-user bounds", bound: (t) => ps.upperSum[0][t] },
    { name: "blend 0.5", bound: (t) => combineUpper(ps.mean[0][t], ps.variance[0][t], ps.upperSum[0][t], { method: "blend", z: Z, blendWeight: 0.5 }) },
    { name: "aggregate key (engine)", bound: (t) => ps.aggUpper[0][t] },
    { name: "sum of per-user means (no bound)", bound: (t) => ps.mean[0][t] },
  ];
  let actualSum = 0;
  for (const t of scored) actualSum += ps.actual[t];
  for (const v of variants) {
    let covered = 0, boundSum = 0;
    for (const t of scored) {
      const b = v.bound(t);
      boundSum += b;
      if (ps.actual[t] <= b) covered++;
    }
    boundRows.push({ pool: m, clients: ps.clients, bound: v.name, coveragePct: Math.round((1000 * covered) / scored.length) / 10, capacityRatio: Math.round((100 * boundSum) / actualSum) / 100 });
  }
}
console.log("\nPool upper bound on days 7-13 (10-minute windows; gap windows excluded):");
console.table(boundRows);

// Coverage against capacity along each family, so the bounds are compared at matched coverage:
// "variance": Σμ + z·√Σσ² for z = 0..8; "sum": Σμ + k·Σ(upperᵢ − μᵢ) for k = 0..4 (k = 1 is the
// naive sum; k scales every user's bound alike); "aggregate": the pool key's μ + k·(upper − μ).
interface FrontierRow {
  pool: string;
  targetCoveragePct: number;
  varianceCapacity: number | null;
  sumCapacity: number | null;
  aggregateCapacity: number | null;
  sumOverVariance: number | null;
}
const frontierRows: FrontierRow[] = [];
for (const m of MODELS) {
  const ps = pools[m];
  const sorted = [...ps.actual.subarray(0, 7 * DAY)].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  const scored: number[] = [];
  for (let t = 7 * DAY; t < T; t++) if (ps.actual[t] >= 0.05 * median) scored.push(t);
  let actualSum = 0;
  for (const t of scored) actualSum += ps.actual[t];
  const agg = fc.get(`pool-total-${m}:0`)!;
  const family = (bound: (t: number, k: number) => number, ks: number[]) =>
    ks.map((k) => {
      let covered = 0, b = 0;
      for (const t of scored) {
        const v = bound(t, k);
        b += v;
        if (ps.actual[t] <= v) covered++;
      }
      return { coverage: (100 * covered) / scored.length, capacity: b / actualSum };
    });
  const steps = (max: number, n: number) => Array.from({ length: n + 1 }, (_, i) => (max * i) / n);
  const fam = {
    variance: family((t, z) => ps.mean[0][t] + z * Math.sqrt(ps.variance[0][t]), steps(8, 320)),
    sum: family((t, k) => ps.mean[0][t] + k * (ps.upperSum[0][t] - ps.mean[0][t]), steps(4, 320)),
    aggregate: family((t, k) => agg.preds[0][t] + k * (agg.uppers![0][t] - agg.preds[0][t]), steps(6, 320)),
  };
  // Least capacity reaching the target coverage (families are monotone in their parameter).
  const need = (f: { coverage: number; capacity: number }[], target: number) => {
    const hit = f.find((x) => x.coverage >= target);
    return hit ? Math.round(hit.capacity * 1000) / 1000 : null;
  };
  for (const target of [90, 95, 97, 98, 99]) {
    const v = need(fam.variance, target), su = need(fam.sum, target), ag = need(fam.aggregate, target);
    frontierRows.push({ pool: m, targetCoveragePct: target, varianceCapacity: v, sumCapacity: su, aggregateCapacity: ag, sumOverVariance: v && su ? Math.round((su / v) * 1000) / 1000 : null });
  }
}
console.log("\nCapacity (mean bound / mean actual) each bound family needs to cover the target share of windows:");
console.table(frontierRows);

// ---- 2. A replayed week of one pool.
const POOL = args.pool!;
const ps = pools[POOL];
if (!ps) throw new Error(`--pool must be one of ${MODELS.join(", ")}`);
const TICK_MS = 15_000;
const POD_START_SEC = 120;
const sortedRates = [...ps.actual.subarray(0, 7 * DAY)].map((x) => x / BUCKET_SEC).sort((a, b) => a - b);
const R = sortedRates[Math.floor(sortedRates.length / 2)] / 20;

export interface WeekConfig {
  method: DemandMethod;
  headroom: number;
  /** Quantile of the pool bound (variance, blend). */
  upperQuantile: number;
  /** Hold scale-downs by the forecast over the stabilization window ahead. */
  lookAhead: boolean;
}
function replayWeek(cfg: WeekConfig) {
  const pool: PoolPolicyConfig = {
    ...POOL_POLICY_DEFAULTS,
    name: POOL,
    costModel: { requestsPerSecPerReplica: R, cpuPerReplicaMillicores: 1000, memoryPerReplicaMiB: 1024 },
    minReplicas: 1,
    maxReplicas: 1000,
    targetUtilization: 1,
    headroom: cfg.headroom,
    podStartDelaySec: POD_START_SEC,
    demandMethod: cfg.method,
    upperQuantile: cfg.upperQuantile,
  };
  const poolZ = normalQuantile(cfg.upperQuantile);
  // Start one hour before day 7 (warm-up, not scored), as the replay issue does.
  const t0 = (7 * DAY - 6) * BUCKET_SEC * 1000;
  const t1 = 14 * DAY * BUCKET_SEC * 1000;
  const policy = new PoolPolicy(pool, 1);
  const hpaAlone = new HpaRecommender({ capacityPerReplicaPerSec: R, targetUtilization: pool.reactive.targetUtilization, minReplicas: 1, maxReplicas: 1000, initialReplicas: 1 });
  const horizonMs = (POD_START_SEC + TICK_MS / 1000) * 1000;
  type Track = { replicas: number; pending: { readyAtMs: number; n: number }[]; ready: number };
  const mkTrack = (): Track => ({ replicas: 1, pending: [], ready: 1 });
  const fore = mkTrack(), hpa = mkTrack();
  const days = Array.from({ length: 7 }, () => ({
    fore: { replicaHours: 0, max: 0, up: 0, down: 0, shortSec: 0 },
    hpa: { replicaHours: 0, max: 0, up: 0, down: 0, shortSec: 0 },
  }));
  const apply = (tr: Track, next: number, now: number, d: { up: number; down: number }) => {
    if (next > tr.replicas) {
      tr.pending.push({ readyAtMs: now + POD_START_SEC * 1000, n: next - tr.replicas });
      d.up++;
    } else if (next < tr.replicas) {
      // Scale-down is immediate; pending replicas are cancelled first.
      let cut = tr.replicas - next;
      for (let k = tr.pending.length - 1; k >= 0 && cut > 0; k--) {
        const c = Math.min(cut, tr.pending[k].n);
        tr.pending[k].n -= c;
        cut -= c;
      }
      tr.pending = tr.pending.filter((p) => p.n > 0);
      tr.ready -= cut;
      d.down++;
    }
    tr.replicas = next;
  };
  const advance = (tr: Track, now: number) => {
    while (tr.pending.length > 0 && tr.pending[0].readyAtMs <= now) tr.ready += tr.pending.shift()!.n;
  };
  const timeline: { tMs: number; demand: number; fore: number; hpa: number }[] = [];
  let flapsUpDown = 0, flapsDownUp = 0;
  let lastUpMs = -Infinity, lastDownMs = -Infinity, flapsForecast = 0;
  let hpaUpDown = 0, hpaDownUp = 0, hpaLastUp = -Infinity, hpaLastDown = -Infinity;
  for (let now = t0; now < t1; now += TICK_MS) {
    const k = Math.floor(now / 1000 / BUCKET_SEC);
    const demand = ps.actual[k] / BUCKET_SEC; // req/s, the window's recorded rate
    // Forecast covering now .. now + horizon: the window's own (h = 1) and, if the horizon
    // crosses into the next window, that one's (h = 2); the larger bound is sized for.
    const kEnd = Math.floor((now + horizonMs) / 1000 / BUCKET_SEC);
    const bound = (h: number, kk: number) => combineUpper(ps.mean[h][kk], ps.variance[h][kk], ps.upperSum[h][kk], { method: cfg.method, z: poolZ, blendWeight: 0.5 }) / BUCKET_SEC;
    const upper = Math.max(bound(0, k), kEnd > k && kEnd < T ? bound(1, kEnd) : 0);
    // Look-ahead for scale-downs: the windows the stabilization window (plus the horizon) reaches.
    const kAhead = Math.floor((now + horizonMs + pool.stabilizationWindowSec * 1000) / 1000 / BUCKET_SEC);
    const ahead = Math.max(upper, kAhead > kEnd && kAhead < T && kAhead - k <= 2 ? bound(kAhead - k - 1, kAhead) : 0);
    const dec = policy.decide(now, { upperRequestsPerSec: upper, aheadUpperRequestsPerSec: cfg.lookAhead ? ahead : undefined, observedRequestsPerSec: demand });
    policy.settle(dec.replicas);
    hpaAlone.observe(now, demand);
    const h = hpaAlone.recommend(now);
    if (h.replicas !== dec.reactiveReplicas) throw new Error(`the policy's floor (${dec.reactiveReplicas}) is not the HPA alone (${h.replicas}) at ${now}`);
    const day = Math.floor(now / 1000 / 86400) - 7;
    const scored = day >= 0;
    const dd = scored ? days[day] : { fore: { up: 0, down: 0 }, hpa: { up: 0, down: 0 } };
    if (dec.direction === "up") {
      if (now - lastDownMs < pool.stabilizationWindowSec * 1000) {
        flapsDownUp++;
        if (dec.reason !== "up: reactive floor" && dec.reason !== "up: active users") flapsForecast++;
      }
      lastUpMs = now;
    } else if (dec.direction === "down") {
      if (now - lastUpMs < pool.stabilizationWindowSec * 1000) flapsUpDown++;
      lastDownMs = now;
    }
    if (h.replicas > hpa.replicas) {
      if (now - hpaLastDown < pool.stabilizationWindowSec * 1000) hpaDownUp++;
      hpaLastUp = now;
    } else if (h.replicas < hpa.replicas) {
      if (now - hpaLastUp < pool.stabilizationWindowSec * 1000) hpaUpDown++;
      hpaLastDown = now;
    }
    apply(fore, dec.replicas, now, dd.fore);
    apply(hpa, h.replicas, now, dd.hpa);
    for (const [tr, agg] of [[fore, scored ? days[day].fore : undefined], [hpa, scored ? days[day].hpa : undefined]] as const) {
      advance(tr, now);
      if (!agg) continue;
      agg.replicaHours += (tr.replicas * TICK_MS) / 3_600_000;
      agg.max = Math.max(agg.max, tr.replicas);
      if (tr.ready * R < demand) agg.shortSec += TICK_MS / 1000;
    }
    if (scored && day === 0) timeline.push({ tMs: now, demand, fore: fore.replicas, hpa: hpa.replicas });
  }
  const round = (x: number) => Math.round(x * 10) / 10;
  const perDay = days.map((d, i) => ({
    day: 7 + i,
    foresightReplicaHours: round(d.fore.replicaHours),
    hpaReplicaHours: round(d.hpa.replicaHours),
    foresightMax: d.fore.max,
    hpaMax: d.hpa.max,
    foresightActions: d.fore.up + d.fore.down,
    hpaActions: d.hpa.up + d.hpa.down,
    foresightShortMin: round(d.fore.shortSec / 60),
    hpaShortMin: round(d.hpa.shortSec / 60),
  }));
  const sum = (f: (r: (typeof perDay)[number]) => number) => round(perDay.reduce((a, r) => a + f(r), 0));
  return {
    config: cfg,
    perDay,
    week: {
      foresightReplicaHours: sum((r) => r.foresightReplicaHours),
      hpaReplicaHours: sum((r) => r.hpaReplicaHours),
      foresightActions: sum((r) => r.foresightActions),
      hpaActions: sum((r) => r.hpaActions),
      foresightShortMin: sum((r) => r.foresightShortMin),
      hpaShortMin: sum((r) => r.hpaShortMin),
      flapsUpThenDownInsideWindow: flapsUpDown,
      flapsDownThenUpInsideWindow: flapsDownUp,
      flapsDownThenUpForecastDriven: flapsForecast,
      hpaFlapsUpThenDownInsideWindow: hpaUpDown,
      hpaFlapsDownThenUpInsideWindow: hpaDownUp,
    },
    timelineDay7Hourly: timeline.filter((_, i) => i % 240 === 0).map((p) => ({ hour: Math.round((p.tMs / 3_600_000) % 24), demandPerSec: round(p.demand), foresight: p.fore, hpa: p.hpa })),
  };
}

const weeks = [
  replayWeek({ method: "variance", headroom: 0.1, upperQuantile: 0.99, lookAhead: true }), // the defaults
  replayWeek({ method: "variance", headroom: 0.1, upperQuantile: 0.99, lookAhead: false }),
  replayWeek({ method: "variance", headroom: 0.1, upperQuantile: 0.95, lookAhead: true }),
  replayWeek({ method: "sum", headroom: 0.1, upperQuantile: 0.99, lookAhead: true }),
  replayWeek({ method: "variance", headroom: 0, upperQuantile: 0.99, lookAhead: true }),
];
console.log(`\nReplayed week of pool ${POOL}: R = ${R.toFixed(3)} req/s per replica (median of days 0-6 / 20), decisions every 15 s, scale-ups ready after ${POD_START_SEC} s`);
for (const w of weeks) {
  console.log(`\n${w.config.method} bound (q ${w.config.upperQuantile}), headroom ${w.config.headroom}, look-ahead ${w.config.lookAhead}:`);
  console.table(w.perDay);
  console.log(w.week);
}
writeBenchJson(args.out!, "npm run bench:allocator-replay", {
  trace: args.trace,
  engine: `${args.engine} ensemble, 10-minute buckets, quantile ${Q}, horizons 1-2 buckets`,
  scoredDays: "7-13",
  gapHoursExcluded: gapHours,
  poolBounds: boundRows,
  capacityAtCoverage: frontierRows,
  replay: { pool: POOL, requestsPerSecPerReplica: R, podStartSec: POD_START_SEC, tickMs: TICK_MS, weeks },
  wallSec: Math.round((Date.now() - started) / 1000),
});
console.log(`\nwrote ${args.out} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
