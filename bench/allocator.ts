// Allocator decision time per tick: 1M users over 100 pools, aggregation (users' forecasts →
// per-pool sums) + policy (100 pools' decisions + cluster budget), target ≤ 20 ms.
// Side by side in one run: the typed-array path (src/allocator) and a plain-object peer (users as
// objects, per-pool sums in a Map by pool name) feeding the same policy; their per-pool sums and
// decisions are checked equal before timing. Writes the `decision` key of
// bench/results/allocator-decision.json (the actuation half is bench/results/allocator.json's).
//
//   npm run bench:allocator [-- --users 1000000 --pools 100 --ticks 60 --split 0.05]
import * as hdr from "hdr-histogram-js";
import { parseArgs } from "node:util";
import { aggregateDemand, newPoolDemand, PoolMembership, type PoolDemand, type UserForecastArrays } from "../src/allocator/demand.ts";
import { ClusterPolicy, POOL_POLICY_DEFAULTS, type PoolDecision, type PoolPolicyConfig } from "../src/allocator/policy.ts";
import { normalQuantile } from "../src/engine/options.ts";
import { mulberry32 } from "../src/util/random.ts";
import { writeBenchJson } from "./env.ts";

const { values: args } = parseArgs({
  options: {
    users: { type: "string", default: "1000000" },
    pools: { type: "string", default: "100" },
    ticks: { type: "string", default: "60" },
    split: { type: "string", default: "0.05" },
    out: { type: "string", default: "bench/results/allocator-decision.json" },
  },
});
const N = Number(args.users);
const P = Number(args.pools);
const TICKS = Number(args.ticks);
const SPLIT = Number(args.split);
const Z = normalQuantile(0.95);
const TICK_MS = 15_000;

// --- Input: a heavy-tailed population (a few big tenants, many small), 5 % split over two pools.
const rnd = mulberry32(42);
const f: UserForecastArrays = {
  count: N,
  meanPerSec: new Float64Array(N),
  upperPerSec: new Float64Array(N),
  observedPerSec: new Float64Array(N),
};
const membership = new PoolMembership(N, P);
interface PlainUser {
  mean: number;
  upper: number;
  observed: number;
  shares: { pool: string; weight: number }[];
}
const plain: PlainUser[] = new Array(N);
const poolNames = Array.from({ length: P }, (_, i) => `pool-${i}`);
for (let i = 0; i < N; i++) {
  const mean = 0.01 * Math.exp(3 * rnd()); // 0.01 .. 0.2 req/s, log-uniform
  const upper = mean * (1.2 + rnd());
  const observed = rnd() < 0.3 ? mean * (0.5 + rnd()) : 0;
  f.meanPerSec[i] = mean;
  f.upperPerSec[i] = upper;
  f.observedPerSec[i] = observed;
  const p = Math.floor(rnd() * P);
  if (rnd() < SPLIT) {
    const q = (p + 1 + Math.floor(rnd() * (P - 1))) % P;
    const w = 0.2 + 0.6 * rnd();
    membership.setShares(i, [{ pool: p, weight: w }, { pool: q, weight: 1 - w }]);
  } else membership.set(i, p);
  plain[i] = { mean, upper, observed, shares: membership.sharesOf(i).map((s) => ({ pool: poolNames[s.pool], weight: s.weight })) };
}

const poolConfigs: PoolPolicyConfig[] = poolNames.map((name, i) => ({
  ...POOL_POLICY_DEFAULTS,
  name,
  priority: i % 3,
  maxReplicas: 1000,
  costModel: { requestsPerSecPerReplica: 5, cpuPerReplicaMillicores: 1000, memoryPerReplicaMiB: 2048 },
}));
const budget = { maxReplicasTotal: 20_000, maxCpuMillicores: 20_000_000, maxMemoryMiB: 1e9 };

// --- The plain-object peer's aggregation (what a straightforward implementation would write).
interface PlainSums {
  mean: number;
  variance: number;
  upperSum: number;
  observed: number;
  active: number;
}
function plainAggregate(users: PlainUser[], z: number): Map<string, PlainSums> {
  const m = new Map<string, PlainSums>();
  for (const name of poolNames) m.set(name, { mean: 0, variance: 0, upperSum: 0, observed: 0, active: 0 });
  for (const u of users) {
    const s = u.upper > u.mean ? (u.upper - u.mean) / z : 0;
    for (const sh of u.shares) {
      const e = m.get(sh.pool)!;
      const w = sh.weight;
      e.mean += w * u.mean;
      e.variance += w * w * s * s;
      e.upperSum += w * u.upper;
      e.observed += w * u.observed;
      if (u.observed > 0) e.active += 1;
    }
  }
  return m;
}
function toPoolDemand(m: Map<string, PlainSums>): PoolDemand {
  const d = newPoolDemand(P, false);
  poolNames.forEach((n, i) => {
    const e = m.get(n)!;
    d.meanPerSec[i] = e.mean;
    d.variance[i] = e.variance;
    d.upperSumPerSec[i] = e.upperSum;
    d.observedPerSec[i] = e.observed;
    d.activeUsers[i] = e.active;
  });
  return d;
}

// --- Check the two agree (sums to 1e-9 relative: split weights are summed in the same order, but
// the typed path multiplies by 1/z where the peer divides), and decisions are identical over ticks.
const typedOut = newPoolDemand(P, false);
const typedPolicy = new ClusterPolicy(poolConfigs, budget);
const plainPolicy = new ClusterPolicy(poolConfigs, budget);
const dT = aggregateDemand(f, membership, Z, typedOut);
const dP = toPoolDemand(plainAggregate(plain, Z));
let maxRel = 0;
for (const k of ["meanPerSec", "variance", "upperSumPerSec", "observedPerSec", "activeUsers"] as const) {
  for (let i = 0; i < P; i++) {
    const a = dT[k][i], b = dP[k][i];
    const rel = Math.abs(a - b) / Math.max(1e-12, Math.abs(b));
    maxRel = Math.max(maxRel, rel);
    if (rel > 1e-9) throw new Error(`aggregation differs at pool ${i} ${k}: typed ${a}, plain ${b}`);
  }
}
const sig = (ds: PoolDecision[]) => ds.map((d) => `${d.replicas}/${d.predictiveReplicas}/${d.reactiveReplicas}/${d.reason}`).join(",");
for (let t = 0; t < 5; t++) {
  // Vary the load between ticks so the policies move (up, hold, down).
  const scale = t < 2 ? 1 : 0.4;
  const a = typedPolicy.decideFromDemand(t * TICK_MS, scaleDemand(dT, scale), Z);
  const b = plainPolicy.decideFromDemand(t * TICK_MS, scaleDemand(dP, scale), Z);
  if (sig(a) !== sig(b)) throw new Error(`decisions differ at tick ${t}`);
}
function scaleDemand(d: PoolDemand, s: number): PoolDemand {
  const o = newPoolDemand(P, false);
  for (let i = 0; i < P; i++) {
    o.meanPerSec[i] = d.meanPerSec[i] * s;
    o.variance[i] = d.variance[i] * s * s;
    o.upperSumPerSec[i] = d.upperSumPerSec[i] * s;
    o.observedPerSec[i] = d.observedPerSec[i] * s;
    o.activeUsers[i] = d.activeUsers[i];
  }
  return o;
}
console.log(`checked: typed and plain aggregation agree (max relative difference ${maxRel.toExponential(2)}), decisions identical over 5 ticks`);

// --- Timing: alternate the two per tick so machine noise hits both alike.
type Hist = ReturnType<typeof hdr.build>;
const mk = () => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
const h = { typed: { agg: mk(), policy: mk(), total: mk(), cpu: mk() }, plain: { agg: mk(), policy: mk(), total: mk(), cpu: mk() } };
// The machine's floor for a pass over the inputs: one sum per pool of one array (no policy). It
// shows how far the aggregation is from memory speed under the load of the moment.
const floorWall = mk(), floorCpu = mk();
const floorSums = new Float64Array(P);
function floorPass(): void {
  floorSums.fill(0);
  const po = membership.poolOf, mean = f.meanPerSec;
  for (let i = 0; i < N; i++) {
    const p = po[i];
    if (p >= 0) floorSums[p] += mean[i];
  }
}
const WARMUP = 5;
let t0 = 5 * TICK_MS;
for (let tick = 0; tick < TICKS + WARMUP; tick++) {
  const now = t0 + tick * TICK_MS;
  // Forecasts change every tick: a user's observed rate drifts (one in 64 users touched, cheap).
  for (let i = tick % 64; i < N; i += 64) f.observedPerSec[i] *= 1.01;
  {
    const c0 = process.cpuUsage();
    const a = process.hrtime.bigint();
    floorPass();
    const b = process.hrtime.bigint();
    const cu = process.cpuUsage(c0);
    if (tick >= WARMUP) {
      floorWall.recordValue(Number(b - a) / 1000);
      floorCpu.recordValue(Math.max(1, cu.user + cu.system));
    }
  }
  for (const which of tick % 2 === 0 ? (["typed", "plain"] as const) : (["plain", "typed"] as const)) {
    const cpu0 = process.cpuUsage();
    const a = process.hrtime.bigint();
    const d = which === "typed" ? aggregateDemand(f, membership, Z, typedOut) : toPoolDemand(plainAggregate(plain, Z));
    const b = process.hrtime.bigint();
    (which === "typed" ? typedPolicy : plainPolicy).decideFromDemand(now, d, Z);
    const c = process.hrtime.bigint();
    const cpu = process.cpuUsage(cpu0);
    if (tick >= WARMUP) {
      h[which].cpu.recordValue(Math.max(1, cpu.user + cpu.system));
      const hh = h[which];
      hh.agg.recordValue(Number(b - a) / 1000);
      hh.policy.recordValue(Number(c - b) / 1000);
      hh.total.recordValue(Number(c - a) / 1000);
    }
  }
}
t0 = 0;

const q = (x: Hist, p: number) => Math.round(x.getValueAtPercentile(p)) / 1000; // µs → ms
const row = (name: string, x: { agg: Hist; policy: Hist; total: Hist; cpu: Hist }) => ({
  implementation: name,
  aggregationP50Ms: q(x.agg, 50),
  policyP50Ms: q(x.policy, 50),
  totalP50Ms: q(x.total, 50),
  totalP99Ms: q(x.total, 99),
  totalMaxMs: Math.round(x.total.maxValue) / 1000,
  // CPU time of the process over the tick (user + system): what the tick costs when other
  // processes share the cores (wall time then includes waiting for a core).
  cpuP50Ms: q(x.cpu, 50),
  cpuP99Ms: q(x.cpu, 99),
});
const rows = [
  row("typed arrays (src/allocator)", h.typed),
  row("plain objects + Map (peer)", h.plain),
  row("floor: one array summed per pool", { agg: floorWall, policy: mk(), total: floorWall, cpu: floorCpu }),
];
const speedup = rows[1].totalP50Ms / rows[0].totalP50Ms;
console.table(rows);
const targetMs = 20;
const met = rows[0].totalP99Ms <= targetMs;
const cpuMet = rows[0].cpuP99Ms <= targetMs;
const load = (await import("node:os")).loadavg()[0];
console.log(`decision time per tick, ${N} users over ${P} pools (${(SPLIT * 100).toFixed(0)} % split): wall p50 ${rows[0].totalP50Ms} ms, p99 ${rows[0].totalP99Ms} ms (target <= ${targetMs} ms: ${met ? "met" : "MISSED"}); CPU p50 ${rows[0].cpuP50Ms} ms; ${speedup.toFixed(1)}x faster than the plain-object peer; load average ${load.toFixed(1)} on ${(await import("node:os")).cpus().length} cores`);
writeBenchJson(args.out!, "npm run bench:allocator", {
  decision: {
    users: N,
    pools: P,
    splitFraction: SPLIT,
    ticks: TICKS,
    targetMs,
    targetMet: met,
    targetMetOnCpuTime: cpuMet,
    checkedEqual: { maxRelativeDifference: maxRel, decisionTicksCompared: 5 },
    rows,
    speedupP50: Math.round(speedup * 100) / 100,
  },
});
console.log(`wrote ${args.out}`);
