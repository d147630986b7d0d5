/**
 * The replay of one pool: traffic → every policy in lockstep, second by second, through the same
 * capacity and queue model, with figures on the scored seconds only. See docs/replay.md.
 *
 * Passes per pool:
 *  1. history: per-second pool demand of days 0..historyDays−1 (R, static levels, per-user quotas);
 *  2. selection: capacity policies on the last `selectionDays` history days (settings are chosen
 *     here and nowhere else);
 *  3. scored: every policy, throttles included, on the scored days (one warm-up hour before).
 * The engine's forecasts come from the real WASM engine fed every client's window counts at window
 * close (src/forecast/engine-replay.ts), computed once per quantile setting before the passes.
 */
import { replayThroughEngine } from "../forecast/engine-replay.ts";
import type { ClientSeries } from "../forecast/trace.ts";
import { FluidQueue, ReplicaSet } from "./capacity.ts";
import { ReplayOptionError } from "./errors.ts";
import { emptyFigures, quantile, type PolicyFigures } from "./metrics.ts";
import type { ForesightSettings, GrantThrottle, PolicyModules, PoolThrottle, UserForecasts } from "./ports.ts";
import { windowArrivals, type PoolTrace } from "./traffic.ts";

/** Every model parameter of the replay (each is a CLI flag). */
export interface ReplayParams {
  /** Seed of the arrival streams. Default 1. */
  seed: number;
  /** Days of history (engine warm-up, R, static levels, quotas, settings). Default 7. */
  historyDays: number;
  /** First scored day. Default = historyDays. */
  firstScoredDay: number;
  /** Scored days. Default 7. */
  scoredDays: number;
  /** Simulated, unscored warm-up before a scored (or selection) span, s. Default 3600. */
  warmupSec: number;
  /** History days at the end of the history on which settings are chosen. Default 3. */
  selectionDays: number;
  /** Replicas at the pool's median per-second demand over the history (R = median / this). Default 20. */
  medianReplicas: number;
  /** Decision interval, s. Default 15. */
  decisionSec: number;
  /** Scale-up delay: a replica added at a decision serves this many seconds later. Default 120. */
  startDelaySec: number;
  /** Most seconds a request waits after its arrival second (it is served in its second or the next ones). Default 2. */
  maxWaitSec: number;
  /** A window is a recording gap when the pool total is below this fraction of its median window. Default 0.05. */
  gapFraction: number;
  /** Most inter-arrival draws per client window (blocks of gaps beyond; see traffic.ts). Default 1200. */
  maxDrawsPerWindow: number;
  /** HPA targets traced for the frontier. Default 0.4 … 1.0 by 0.1. */
  hpaTargets: number[];
  /** The HPA row of the tables and of the fixed-window limiter. Default 0.7. */
  hpaTarget: number;
  /** Oracle lookahead, s. Default 180. */
  oracleLookaheadSec: number;
  /** Oracle capacity multipliers traced for its frontier. */
  oracleFactors: number[];
  /** Foresight headrooms traced. */
  foresightHeadrooms: number[];
  /** Foresight upper-bound quantiles traced. */
  foresightQuantiles: number[];
  /** Foresight reactive-floor HPA targets traced (pools[].reactive.targetUtilization; 0.7 = the schema default). */
  foresightFloorTargets: number[];
  /** SLO at which settings are chosen on the history, and the main matched point. Default 0.999. */
  selectionSlo: number;
  /** Fixed-window limiter: window, s. Default 60. */
  fixedWindowSec: number;
  /** Fixed-window limiter: per-user quota = this quantile of the user's per-window counts over the history. Default 1 (the peak). */
  fixedWindowQuotaQuantile: number;
  /** Throttle bucket burst factor (throttle.burstFactor). Default 1.5. */
  burstFactor: number;
  /** The throttle's pool load is the mean arrival rate over this many trailing seconds (pressure = load / capacity). Default 5. */
  pressureWindowSec: number;
  /** "wasm" (release build) or "ts" (the engine's TypeScript reference). Default "wasm". */
  engine: "wasm" | "ts";
  /** LSTM-lite weights for the engine's ensemble (default: the built-in initialisation, as serve runs). */
  lstmWeights?: Uint8Array;
}

export const DEFAULT_PARAMS: ReplayParams = {
  seed: 1,
  historyDays: 7,
  firstScoredDay: 7,
  scoredDays: 7,
  warmupSec: 3600,
  selectionDays: 3,
  medianReplicas: 20,
  decisionSec: 15,
  startDelaySec: 120,
  maxWaitSec: 2,
  gapFraction: 0.05,
  maxDrawsPerWindow: 1200,
  hpaTargets: [0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
  hpaTarget: 0.7,
  oracleLookaheadSec: 180,
  oracleFactors: [0.8, 0.85, 0.9, 0.95, 1.0],
  foresightHeadrooms: [0, 0.15, 0.3, 0.5],
  foresightQuantiles: [0.9, 0.99],
  foresightFloorTargets: [0.7, 1.0],
  selectionSlo: 0.999,
  fixedWindowSec: 60,
  fixedWindowQuotaQuantile: 1,
  burstFactor: 1.5,
  pressureWindowSec: 5,
  engine: "wasm",
};

const DAY = 86400;

/** Checks the parameters; throws ReplayOptionError naming the first bad one. */
export function checkParams(p: ReplayParams): void {
  const bad = (name: string, rule: string) => {
    throw new ReplayOptionError(`${name} = ${JSON.stringify((p as unknown as Record<string, unknown>)[name])}: ${rule}`);
  };
  const posInt = (n: keyof ReplayParams, min = 1) => {
    const v = p[n] as number;
    if (!(Number.isInteger(v) && v >= min)) bad(n, `must be an integer >= ${min}`);
  };
  posInt("historyDays");
  posInt("scoredDays");
  posInt("firstScoredDay");
  posInt("selectionDays");
  posInt("decisionSec");
  posInt("startDelaySec", 0);
  posInt("maxWaitSec", 0);
  posInt("warmupSec", 0);
  posInt("maxDrawsPerWindow");
  posInt("fixedWindowSec");
  posInt("pressureWindowSec");
  if (p.firstScoredDay < p.historyDays) bad("firstScoredDay", `must be >= historyDays (${p.historyDays}): scored days are never history`);
  if (p.selectionDays > p.historyDays - 1) bad("selectionDays", `must leave at least one history day before it for the engine to warm up (historyDays ${p.historyDays})`);
  if (!(p.medianReplicas > 0)) bad("medianReplicas", "must be > 0");
  if (!(p.gapFraction >= 0 && p.gapFraction < 1)) bad("gapFraction", "must be in [0, 1)");
  for (const t of [...p.hpaTargets, p.hpaTarget]) if (!(t > 0 && t <= 1)) bad("hpaTargets", "every target must be in (0, 1]");
  if (!p.hpaTargets.includes(p.hpaTarget)) bad("hpaTarget", "must be one of hpaTargets");
  for (const f of p.oracleFactors) if (!(f > 0)) bad("oracleFactors", "every factor must be > 0");
  for (const h of p.foresightHeadrooms) if (!(h >= 0)) bad("foresightHeadrooms", "every headroom must be >= 0");
  for (const q of p.foresightQuantiles) if (!(q > 0.5 && q < 1)) bad("foresightQuantiles", "every quantile must be in (0.5, 1)");
  for (const t of p.foresightFloorTargets) if (!(t > 0 && t <= 1)) bad("foresightFloorTargets", "every target must be in (0, 1]");
  if (!(p.selectionSlo > 0 && p.selectionSlo < 1)) bad("selectionSlo", "must be in (0, 1)");
  if (!(p.fixedWindowQuotaQuantile > 0 && p.fixedWindowQuotaQuantile <= 1)) bad("fixedWindowQuotaQuantile", "must be in (0, 1]");
  if (!(p.burstFactor >= 1)) bad("burstFactor", "must be >= 1");
  if (!(p.oracleLookaheadSec >= p.decisionSec)) bad("oracleLookaheadSec", "must be >= decisionSec");
  if (p.engine !== "wasm" && p.engine !== "ts") bad("engine", 'must be "wasm" or "ts"');
}

/** Engine forecasts of one quantile, requests/s, `[h-1][client * windows + window]` = forecast for that window made h windows before. */
export interface PoolForecasts {
  quantile: number;
  mean: Float64Array[];
  upper: Float64Array[];
}

/** Runs the real engine (ensemble, as serve runs it) over every client's window counts. */
export async function engineForecasts(trace: PoolTrace, q: number, p: ReplayParams): Promise<PoolForecasts> {
  const W = trace.windows;
  const series: ClientSeries[] = trace.clientIds.map((id, c) => {
    const requests = trace.requests.slice(c * W, (c + 1) * W);
    let total = 0;
    for (const v of requests) total += v;
    return { key: `${trace.model}:${id}`, model: trace.model, clientId: id, requests, iatCv: new Float64Array(W), tokensPerRequest: new Float64Array(W), totalRequests: total };
  });
  const horizons = [1, 2];
  const out = await replayThroughEngine(series, { engine: p.engine, horizons, bucketSec: trace.windowSec, quantile: q, ensemble: true, lstmWeights: p.lstmWeights });
  const ens = out["ensemble-engine"];
  const mean = horizons.map(() => new Float64Array(trace.clientIds.length * W));
  const upper = horizons.map(() => new Float64Array(trace.clientIds.length * W));
  series.forEach((s, c) => {
    const f = ens.byKey.get(s.key)!;
    for (let k = 0; k < horizons.length; k++)
      for (let w = 0; w < W; w++) {
        mean[k][c * W + w] = f.preds[k][w] / trace.windowSec;
        upper[k][c * W + w] = f.uppers![k][w] / trace.windowSec;
      }
  });
  return { quantile: q, mean, upper };
}

/** What the history pass learns about a pool. */
export interface PoolHistory {
  /** Median per-second demand over the history, requests/s. */
  medianPerSec: number;
  /** Requests/s one replica serves. */
  replicaRatePerSec: number;
  peakPerSec: number;
  p99PerSec: number;
  staticPeakReplicas: number;
  staticP99Replicas: number;
  /** Fixed-window quota per client, requests per window. */
  quotaPerWindow: Float64Array;
  /** Per-second demand of the history days. */
  demand: Float64Array;
}

/** Pass 1: per-second demand of the history days, R, static levels, fixed-window quotas. */
export function historyPass(trace: PoolTrace, p: ReplayParams, progress?: (done: number, total: number) => void): PoolHistory {
  const W = trace.windowSec;
  const C = trace.clientIds.length;
  const windows = (p.historyDays * DAY) / W;
  const demand = new Float64Array(p.historyDays * DAY);
  const per = new Float64Array(C * W);
  const tot = new Float64Array(W);
  const fw = p.fixedWindowSec;
  const fwCount = Math.floor((p.historyDays * DAY) / fw);
  const perClientWindow = new Float64Array(C * fwCount);
  for (let w = 0; w < windows; w++) {
    windowArrivals(trace, w, p.seed, per, tot, undefined, p.maxDrawsPerWindow);
    demand.set(tot, w * W);
    for (let c = 0; c < C; c++) {
      const row = c * fwCount;
      const src = c * W;
      for (let i = 0, sec = w * W; i < W; i++, sec++) {
        const k = (sec / fw) | 0;
        if (k < fwCount) perClientWindow[row + k] += per[src + i];
      }
    }
    progress?.(w + 1, windows);
  }
  // Gap windows hold refilled data: they count for R like the day they copy.
  const medianPerSec = quantile(demand, 0.5);
  if (!(medianPerSec > 0)) throw new ReplayOptionError(`pool ${trace.model}: median per-second demand over the history is 0; R cannot be set`);
  const R = medianPerSec / p.medianReplicas;
  const peak = quantile(demand, 1);
  const p99 = quantile(demand, 0.99);
  const quotaPerWindow = new Float64Array(C);
  for (let c = 0; c < C; c++) quotaPerWindow[c] = Math.max(1, Math.ceil(quantile(perClientWindow.subarray(c * fwCount, (c + 1) * fwCount), p.fixedWindowQuotaQuantile)));
  return {
    medianPerSec, replicaRatePerSec: R, peakPerSec: peak, p99PerSec: p99,
    staticPeakReplicas: Math.ceil(peak / R - 1e-9), staticP99Replicas: Math.ceil(p99 / R - 1e-9), quotaPerWindow, demand,
  };
}

/** One policy run (a row or a frontier point). */
export interface PolicyRun {
  /** Row name, e.g. "hpa-0.7", "foresight h0.2 q0.99". */
  name: string;
  family: "static" | "hpa" | "foresight" | "oracle" | "limiter" | "foresight+throttle";
  /** The setting's parameters (target, headroom, quantile, factor). */
  setting: Record<string, number>;
  figures: PolicyFigures;
}

/** A miss episode: consecutive seconds in which requests were dropped. */
export interface MissEpisode {
  startSec: number;
  durationSec: number;
  /** Requests of the episode's cohorts and how many were dropped. */
  requests: number;
  dropped: number;
  /** Client whose window count rose most into the episode's window (model:client), and by how much (req/s). */
  stepClient: string;
  stepPerSec: number;
}

/** A minute-resolution trace of one pool-day for the report. */
export interface DayTimeline {
  model: string;
  day: number;
  /** Mean and max per-second demand per minute, requests/s. */
  demandMean: Float64Array;
  demandMax: Float64Array;
  /** Mean ready capacity per minute, requests/s, per policy name. */
  capacity: Record<string, Float64Array>;
  /** Per-user throttle timeline of the users most refused by either throttle. */
  users: { client: string; arrivals: Float64Array; upperPerMin: Float64Array; refusedForesight: Float64Array; refusedFixedWindow: Float64Array }[];
}

/** Result of one pool. */
export interface PoolResult {
  model: string;
  clients: number;
  history: Omit<PoolHistory, "demand" | "quotaPerWindow">;
  gapWindows: number;
  /** Hours of the scored span excluded as gaps. */
  excludedHours: number;
  scoredHours: number;
  selection: { runs: PolicyRun[]; chosen: ForesightSettings; rule: string };
  runs: PolicyRun[];
  missEpisodes: { hpa: MissEpisode[]; foresight: MissEpisode[] };
  timeline?: DayTimeline;
}

interface Sim {
  run: PolicyRun;
  rs: ReplicaSet;
  q: FluidQueue;
  decide: (t: number) => number;
  /** Per-second hook after serving (observations): (t, demand seen by the pods or the gateways). */
  observe?: (t: number, a: number, admitted: number) => void;
  throttle?: PoolThrottle;
  grants?: GrantThrottle;
  admitted?: Float64Array;
  /** Within-forecast users' admitted requests of the last maxWait+1 cohorts (noisy-neighbour). */
  nnAdm: Float64Array;
  episodes?: MissEpisode[];
  ep?: MissEpisode | null;
  lastDropSec: number;
  timeline?: Float64Array;
  refusedTimeline?: Float64Array;
  /** Foresight: the last decision's predictive and reactive replicas. */
  last?: { predictive: number; reactive: number };
}

/** Everything the simulation of a span needs. */
interface SpanInput {
  trace: PoolTrace;
  p: ReplayParams;
  R: number;
  /** Simulated span [fromSec, toSec) and the scored part [scoreFrom, toSec). */
  fromSec: number;
  scoreFrom: number;
  toSec: number;
  /** Pool demand per second over the whole trace (filled ahead for generated spans). */
  demand: Float64Array;
  /** Per-client arrivals are generated (throttles, noisy-neighbour); else `demand` is read as is. */
  perClient: boolean;
  sims: Sim[];
  forecasts: Map<number, PoolForecasts>;
  /** Quantile whose forecasts classify users as within / over forecast. */
  classifyQuantile: number;
  timelineDay?: number;
  /** Per-minute arrivals per client over the timeline day (`[client * 1440 + minute]`), filled when given. */
  userArrivals?: Float64Array;
  progress?: (done: number, total: number) => void;
}

/** Last forecasts read per (forecasts, lead): every setting of one quantile reads the same arrays at a decision. */
const forecastCache = new WeakMap<PoolForecasts, Map<number, { t: number; users: UserForecasts }>>();

/** The users' forecasts for the window `leadSec` after `tSec` (shared, read-only for the caller). */
function forecastsAt(trace: PoolTrace, f: PoolForecasts, tSec: number, leadSec: number): UserForecasts {
  let byLead = forecastCache.get(f);
  if (!byLead) forecastCache.set(f, (byLead = new Map()));
  let e = byLead.get(leadSec);
  if (!e) byLead.set(leadSec, (e = { t: NaN, users: newForecastArrays(trace.clientIds.length) }));
  if (e.t !== tSec) {
    userForecastsAt(trace, f, tSec, leadSec, e.users);
    e.t = tSec;
  }
  return e.users;
}

function userForecastsAt(trace: PoolTrace, f: PoolForecasts, tSec: number, leadSec: number, out: UserForecasts): void {
  const W = trace.windowSec;
  const wc = Math.floor(tSec / W);
  const wt = Math.min(trace.windows - 1, Math.floor((tSec + leadSec) / W));
  const h = Math.max(1, Math.min(f.mean.length, wt - wc + 1));
  const target = wc - 1 + h;
  for (let c = 0; c < out.count; c++) {
    const k = c * trace.windows;
    out.meanPerSec[c] = f.mean[h - 1][k + target];
    out.upperPerSec[c] = f.upper[h - 1][k + target];
    out.observedPerSec[c] = wc > 0 ? trace.requests[k + wc - 1] / W : 0;
  }
}

const newForecastArrays = (n: number): UserForecasts => ({ count: n, meanPerSec: new Float64Array(n), upperPerSec: new Float64Array(n), observedPerSec: new Float64Array(n) });

/** Simulates [fromSec, toSec) for every sim; figures on scored seconds (not gaps). */
function simulateSpan(s: SpanInput): void {
  const { trace, p, R, sims } = s;
  const W = trace.windowSec;
  const C = trace.clientIds.length;
  const wait = p.maxWaitSec;
  const scored = (t: number) => t >= s.scoreFrom && t < s.toSec && trace.gap[Math.floor(t / W)] === 0;
  const perCur = s.perClient ? new Float64Array(C * W) : null;
  const tot = new Float64Array(W);
  const x = new Float64Array(C);
  // Trailing 60 s per user (within / over forecast).
  const ring = s.perClient ? new Float64Array(C * 60) : null;
  const trailing = new Float64Array(C);
  const within = new Uint8Array(C);
  const classify = s.forecasts.get(s.classifyQuantile);
  const nnArr = new Float64Array(wait + 1);
  // Trailing pool demand over the throttle's pressure window.
  const pw = p.pressureWindowSec;
  const pRing = new Float64Array(pw);
  let pSum = 0;
  const tlDay = s.timelineDay;
  const tlFrom = tlDay === undefined ? -1 : tlDay * DAY;
  const fromW = Math.floor(s.fromSec / W);
  const toW = Math.ceil(s.toSec / W);
  // Generated spans: fill demand one window ahead (the oracle looks ahead).
  const gen = (w: number) => {
    if (w >= trace.windows) return;
    windowArrivals(trace, w, p.seed, perNext, tot, undefined, p.maxDrawsPerWindow);
    s.demand.set(tot, w * W);
  };
  const perNext = s.perClient ? new Float64Array(C * W) : new Float64Array(0);
  if (s.perClient) gen(fromW);
  const end = s.toSec + wait; // let the last cohorts finish
  let t = s.fromSec;
  for (let w = fromW; t < end; w++) {
    if (s.perClient && w < toW) {
      perCur!.set(perNext);
      gen(w + 1);
    }
    const wEnd = Math.min((w + 1) * W, end);
    for (; t < wEnd; t++) {
      const inSpan = t < s.toSec;
      const a = inSpan ? s.demand[t] : 0;
      const sc = scored(t);
      // Per-user arrivals of this second; within/over forecast classification.
      let nnWithin = 0;
      let anyOver = false;
      if (perCur && inSpan) {
        const i = t - w * W;
        const slot = t % 60;
        for (let c = 0; c < C; c++) {
          const v = perCur[c * W + i];
          x[c] = v;
          trailing[c] += v - ring![c * 60 + slot];
          ring![c * 60 + slot] = v;
          const up = classify ? classify.upper[0][c * trace.windows + w] : Infinity;
          const over = trailing[c] > up * 60 + 1e-9;
          within[c] = over ? 0 : 1;
          if (over) anyOver = true;
        }
        if (anyOver) for (let c = 0; c < C; c++) if (within[c]) nnWithin += x[c];
        if (s.userArrivals && t >= tlFrom && t < tlFrom + DAY) {
          const m = Math.floor((t - tlFrom) / 60);
          for (let c = 0; c < C; c++) s.userArrivals[c * 1440 + m] += x[c];
        }
      } else if (perCur) x.fill(0);
      nnArr[t % (wait + 1)] = anyOver ? nnWithin : 0;
      pSum += a - pRing[t % pw];
      pRing[t % pw] = a;
      const load = pSum / pw;
      for (const sim of sims) {
        if (t % p.decisionSec === 0 && inSpan) {
          const d = sim.decide(t);
          const change = sim.rs.set(d, t, p.startDelaySec);
          if (sc && change > 0) sim.run.figures.scaleUps++;
          if (sc && change < 0) sim.run.figures.scaleDowns++;
          if (sc && sim.last) {
            sim.run.figures.decisions++;
            if (sim.last.predictive > sim.last.reactive) sim.run.figures.predictiveAboveFloor++;
          }
        }
        sim.rs.advance(t);
        const cap = sim.rs.ready * R;
        let adm = a;
        if (sim.throttle && perCur && inSpan) {
          sim.throttle.admit(t, x, sim.admitted!, load, cap);
          adm = 0;
          let nnAdm = 0;
          for (let c = 0; c < C; c++) {
            adm += sim.admitted![c];
            if (anyOver && within[c]) nnAdm += sim.admitted![c];
          }
          sim.nnAdm[t % (wait + 1)] = nnAdm;
        } else sim.nnAdm[t % (wait + 1)] = anyOver ? nnWithin : 0;
        sim.q.step(adm, cap);
        const f = sim.run.figures;
        if (sc) {
          f.seconds++;
          f.requests += a;
          f.noQueueServed += adm < cap ? adm : cap;
          const ex = sim.rs.existing;
          f.replicaSec += ex;
          const over = ex - a / R;
          if (over > 0) f.overProvSec += over;
          const refused = a - adm;
          if (refused > 0) {
            f.refused += refused;
            const spare = cap - sim.q.servedNow;
            if (spare > 0) f.falseThrottles += refused < spare ? refused : spare;
          }
          if (anyOver) f.nnRequests += nnWithin;
        }
        const tc = t - wait;
        if (tc >= s.fromSec && scored(tc)) {
          f.served += sim.q.closedServed;
          const frac = sim.q.closedFraction;
          f.nnServed += sim.nnAdm[tc % (wait + 1)] * frac;
          // Miss episodes: cohorts with drops, merged across gaps shorter than 30 s.
          if (sim.episodes) {
            const dropped = sim.q.closedArrivals - sim.q.closedServed;
            if (dropped > 1e-9) {
              if (sim.ep && tc - sim.lastDropSec <= 30) {
                sim.ep.durationSec = tc - sim.ep.startSec + 1;
                sim.ep.dropped += dropped;
              } else {
                sim.ep = { startSec: tc, durationSec: 1, requests: 0, dropped, stepClient: stepClient(trace, Math.floor(tc / W)).client, stepPerSec: stepClient(trace, Math.floor(tc / W)).perSec };
                sim.episodes.push(sim.ep);
              }
              sim.lastDropSec = tc;
            }
            if (sim.ep && tc <= sim.ep.startSec + sim.ep.durationSec + 30) sim.ep.requests += sim.q.closedArrivals;
          }
        }
        if (inSpan) sim.observe?.(t, a, adm);
        if (t >= tlFrom && t < tlFrom + DAY) {
          const m = Math.floor((t - tlFrom) / 60);
          if (sim.timeline) sim.timeline[m] += cap / 60;
          if (sim.refusedTimeline && sim.admitted) for (let c = 0; c < C; c++) sim.refusedTimeline[c * 1440 + m] += x[c] - sim.admitted[c];
        }
      }
    }
    s.progress?.(Math.min(t, s.toSec) - s.fromSec, s.toSec - s.fromSec);
  }
}

/** The client whose rate rose most from window w−1 to w (model:client), and by how much, req/s. */
function stepClient(trace: PoolTrace, w: number): { client: string; perSec: number } {
  let best = -Infinity;
  let who = -1;
  for (let c = 0; c < trace.clientIds.length; c++) {
    const k = c * trace.windows + w;
    const d = trace.requests[k] - (w > 0 ? trace.requests[k - 1] : 0);
    if (d > best) (best = d), (who = c);
  }
  return { client: who < 0 ? "" : `${trace.model}:${trace.clientIds[who]}`, perSec: best / trace.windowSec };
}

interface SimFactoryContext {
  trace: PoolTrace;
  p: ReplayParams;
  R: number;
  hist: PoolHistory;
  demand: Float64Array;
  forecasts: Map<number, PoolForecasts>;
  mods: PolicyModules;
  initialReplicas: number;
}

function baseSim(run: PolicyRun, ready: number, wait: number, decide: (t: number) => number): Sim {
  return { run, rs: new ReplicaSet(ready), q: new FluidQueue(wait), decide, nnAdm: new Float64Array(wait + 1), lastDropSec: -Infinity };
}

function staticSim(name: string, replicas: number, wait: number): Sim {
  return baseSim({ name, family: "static", setting: { replicas }, figures: emptyFigures() }, replicas, wait, () => replicas);
}

function hpaSim(cx: SimFactoryContext, target: number, name = `hpa-${target.toFixed(1)}`, family: PolicyRun["family"] = "hpa"): Sim {
  const hpa = cx.mods.hpa({ replicaRatePerSec: cx.R, targetUtilization: target, initialReplicas: cx.initialReplicas });
  const sim = baseSim({ name, family, setting: { target }, figures: emptyFigures() }, cx.initialReplicas, cx.p.maxWaitSec, (t) => hpa.recommend(t * 1000, sim.rs.existing));
  // The HPA's metric is what reaches the pods: requests a limiter refused never show up there.
  sim.observe = (t, _a, admitted) => hpa.observe((t + 1) * 1000, admitted);
  return sim;
}

function oracleSim(cx: SimFactoryContext, factor: number): Sim {
  const { p, R, demand } = cx;
  // What a second needs: the peak mean over maxWait+1 seconds (a FIFO with that wait serves it all).
  const k = p.maxWaitSec + 1;
  const need = (s: number) => {
    let m = 0;
    for (let j = s; j < s + k && j < demand.length; j++) m += demand[j];
    return m / k;
  };
  const peak = (from: number, to: number) => {
    let m = 0;
    for (let s = from; s < to && s < demand.length; s++) {
      const v = need(s);
      if (v > m) m = v;
    }
    return m;
  };
  // Replicas added now serve from t + startDelay; until then only the existing ones can, and a
  // later decision can add none before t + decision + startDelay. So: keep what the next
  // startDelay seconds need (up to what exists), and have what [t+delay, t+delay+decision) needs.
  const lead = Math.min(p.startDelaySec, p.oracleLookaheadSec);
  const tail = Math.min(p.startDelaySec + p.decisionSec, p.oracleLookaheadSec);
  const sim = baseSim({ name: `oracle-${factor.toFixed(2)}`, family: "oracle", setting: { factor }, figures: emptyFigures() }, cx.initialReplicas, p.maxWaitSec, (t) => {
    const now = Math.ceil((factor * peak(t, t + Math.max(lead, p.decisionSec))) / R - 1e-9);
    const later = Math.ceil((factor * peak(t + lead, t + tail)) / R - 1e-9);
    return Math.max(1, later, Math.min(now, sim.rs.existing));
  });
  return sim;
}

function foresightSim(cx: SimFactoryContext, st: ForesightSettings, throttled: boolean): Sim {
  const { p, R, trace } = cx;
  const f = cx.forecasts.get(st.quantile);
  if (!f) throw new ReplayOptionError(`no engine forecasts for quantile ${st.quantile}`);
  const alloc = cx.mods.foresight({ replicaRatePerSec: R, settings: st, startDelaySec: p.startDelaySec, decisionSec: p.decisionSec, initialReplicas: cx.initialReplicas, userAllocation: throttled });
  const name = `foresight h${st.headroom} q${st.quantile} f${st.floorTarget}${throttled ? " +throttle" : ""}`;
  const sim = baseSim({ name, family: throttled ? "foresight+throttle" : "foresight", setting: { headroom: st.headroom, quantile: st.quantile, floorTarget: st.floorTarget }, figures: emptyFigures() }, cx.initialReplicas, p.maxWaitSec, (t) => {
    const d = alloc.decide(t * 1000, forecastsAt(trace, f, t, p.startDelaySec + p.decisionSec), sim.rs.existing);
    // Grants follow the forecasts of the current window and the capacity the decision sets.
    if (sim.grants) sim.grants.update(t, forecastsAt(trace, f, t, 0), d.replicas * R, d.userAllocPerSec);
    sim.last = { predictive: d.predictiveReplicas, reactive: d.reactiveReplicas };
    return d.replicas;
  });
  // Gateways report every request, refused ones included (censored demand is still demand).
  sim.observe = (t, a) => alloc.observe((t + 1) * 1000, a);
  if (throttled) {
    sim.grants = cx.mods.grants({ users: trace.clientIds.length, burstFactor: p.burstFactor });
    sim.throttle = sim.grants;
    sim.admitted = new Float64Array(trace.clientIds.length);
  }
  return sim;
}

function fixedWindowSim(cx: SimFactoryContext): Sim {
  const sim = hpaSim(cx, cx.p.hpaTarget, `hpa-${cx.p.hpaTarget.toFixed(1)} +fixed-window`, "limiter");
  sim.throttle = cx.mods.fixedWindow({ quotaPerWindow: cx.hist.quotaPerWindow, windowSec: cx.p.fixedWindowSec });
  sim.admitted = new Float64Array(cx.trace.clientIds.length);
  return sim;
}

/** Every (headroom, quantile) setting traced. */
export function foresightGrid(p: ReplayParams): ForesightSettings[] {
  const out: ForesightSettings[] = [];
  for (const floorTarget of p.foresightFloorTargets)
    for (const quantile of p.foresightQuantiles) for (const headroom of p.foresightHeadrooms) out.push({ headroom, quantile, floorTarget });
  return out;
}

/** Progress of a pool: stage name, units done, units total. */
export type PoolProgress = (stage: string, done: number, total: number) => void;

/** Runs one pool through every pass. */
export async function replayPool(trace: PoolTrace, p: ReplayParams, mods: PolicyModules, o: { timelineDay?: number; progress?: PoolProgress } = {}): Promise<PoolResult> {
  const W = trace.windowSec;
  const totalSec = trace.windows * W;
  const scoreFrom = p.firstScoredDay * DAY;
  const scoreTo = scoreFrom + p.scoredDays * DAY;
  if (scoreTo > totalSec) throw new ReplayOptionError(`firstScoredDay ${p.firstScoredDay} + scoredDays ${p.scoredDays} runs past the trace (${totalSec / DAY} days)`);
  const gapWindows = trace.gap.reduce((a, b) => a + b, 0);

  o.progress?.("history", 0, 1);
  const hist = historyPass(trace, p, (d, n) => o.progress?.("history", d, n));
  const R = hist.replicaRatePerSec;
  o.progress?.("engine", 0, p.foresightQuantiles.length);
  const forecasts = new Map<number, PoolForecasts>();
  for (const q of p.foresightQuantiles) {
    forecasts.set(q, await engineForecasts(trace, q, p));
    o.progress?.("engine", forecasts.size, p.foresightQuantiles.length);
  }
  const demand = new Float64Array(totalSec);
  demand.set(hist.demand);
  const initialReplicas = p.medianReplicas;
  const cx: SimFactoryContext = { trace, p, R, hist, demand, forecasts, mods, initialReplicas };
  const capacitySims = (): Sim[] => [
    staticSim("static-peak", hist.staticPeakReplicas, p.maxWaitSec),
    staticSim("static-p99", hist.staticP99Replicas, p.maxWaitSec),
    ...p.hpaTargets.map((t) => hpaSim(cx, t)),
    ...foresightGrid(p).map((st) => foresightSim(cx, st, false)),
    ...p.oracleFactors.map((f) => oracleSim(cx, f)),
  ];

  // Pass 2: selection on the last history days (capacity policies only; demand from pass 1).
  const selFrom = (p.historyDays - p.selectionDays) * DAY;
  const selSims = capacitySims();
  simulateSpan({
    trace, p, R, fromSec: Math.max(0, selFrom - p.warmupSec), scoreFrom: selFrom, toSec: p.historyDays * DAY, demand, perClient: false, sims: selSims,
    forecasts, classifyQuantile: p.foresightQuantiles[0], progress: (d, n) => o.progress?.("selection", d, n),
  });
  const selRuns = selSims.map((s) => s.run);
  const chosen = chooseSetting(selRuns, p.selectionSlo);

  // Pass 3: scored days, every policy.
  const sims = capacitySims();
  const hpaRow = sims.find((s) => s.run.name === `hpa-${p.hpaTarget.toFixed(1)}`)!;
  const fsRow = sims.find((s) => s.run.family === "foresight" && sameSetting(s.run.setting, chosen))!;
  const fw = fixedWindowSim(cx);
  const ft = foresightSim(cx, chosen, true);
  sims.push(fw, ft);
  hpaRow.episodes = [];
  fsRow.episodes = [];
  const tlDay = o.timelineDay;
  if (tlDay !== undefined) {
    for (const s of [hpaRow, fsRow, ...sims.filter((x) => x.run.family === "oracle" && x.run.setting.factor === 1)]) s.timeline = new Float64Array(1440);
    fw.refusedTimeline = new Float64Array(trace.clientIds.length * 1440);
    ft.refusedTimeline = new Float64Array(trace.clientIds.length * 1440);
  }
  const userArrivals = tlDay !== undefined ? new Float64Array(trace.clientIds.length * 1440) : undefined;
  simulateSpan({
    trace, p, R, fromSec: scoreFrom - p.warmupSec, scoreFrom, toSec: scoreTo, demand, perClient: true, sims,
    forecasts, classifyQuantile: chosen.quantile, timelineDay: tlDay, userArrivals, progress: (d, n) => o.progress?.("scored", d, n),
  });

  let excluded = 0;
  for (let w = scoreFrom / W; w < scoreTo / W; w++) excluded += trace.gap[w];
  const { demand: _d, quotaPerWindow: _q, ...histOut } = hist;
  const result: PoolResult = {
    model: trace.model,
    clients: trace.clientIds.length,
    history: histOut,
    gapWindows,
    excludedHours: (excluded * W) / 3600,
    scoredHours: (scoreTo - scoreFrom) / 3600 - (excluded * W) / 3600,
    selection: { runs: selRuns, chosen, rule: `cheapest Foresight setting with SLO >= ${p.selectionSlo} on history days ${p.historyDays - p.selectionDays}..${p.historyDays - 1} (else the highest SLO)` },
    runs: sims.map((s) => s.run),
    missEpisodes: { hpa: hpaRow.episodes, foresight: fsRow.episodes },
  };
  if (tlDay !== undefined) result.timeline = buildTimeline(trace, demand, tlDay, hpaRow, fsRow, sims, fw, ft, forecasts.get(chosen.quantile)!, userArrivals!);
  return result;
}

/** The cheapest Foresight setting meeting `slo` on the selection days, else the one with the best SLO. */
export function chooseSetting(runs: PolicyRun[], slo: number): ForesightSettings {
  const fs = runs.filter((r) => r.family === "foresight");
  const sloOf = (r: PolicyRun) => r.figures.served / (r.figures.requests || 1);
  const ok = fs.filter((r) => sloOf(r) >= slo).sort((a, b) => a.figures.replicaSec - b.figures.replicaSec);
  const pick = ok[0] ?? [...fs].sort((a, b) => sloOf(b) - sloOf(a))[0];
  return { headroom: pick.setting.headroom, quantile: pick.setting.quantile, floorTarget: pick.setting.floorTarget };
}

/** The run's setting is the Foresight setting `st`. */
export function sameSetting(setting: Record<string, number>, st: ForesightSettings): boolean {
  return setting.headroom === st.headroom && setting.quantile === st.quantile && setting.floorTarget === st.floorTarget;
}

function buildTimeline(trace: PoolTrace, demand: Float64Array, day: number, hpa: Sim, fs: Sim, sims: Sim[], fw: Sim, ft: Sim, f: PoolForecasts, userArrivals: Float64Array): DayTimeline {
  const from = day * DAY;
  const demandMean = new Float64Array(1440);
  const demandMax = new Float64Array(1440);
  for (let m = 0; m < 1440; m++) {
    let s = 0;
    let mx = 0;
    for (let i = 0; i < 60; i++) {
      const v = demand[from + m * 60 + i];
      s += v;
      if (v > mx) mx = v;
    }
    demandMean[m] = s / 60;
    demandMax[m] = mx;
  }
  const capacity: Record<string, Float64Array> = {};
  for (const s of [hpa, fs, ...sims.filter((x) => x.timeline && x !== hpa && x !== fs)]) if (s.timeline) capacity[s.run.name] = s.timeline;
  const C = trace.clientIds.length;
  const refusedBy = (c: number) => {
    let a = 0;
    for (let m = 0; m < 1440; m++) a += ft.refusedTimeline![c * 1440 + m] + fw.refusedTimeline![c * 1440 + m];
    return a;
  };
  const order = Array.from({ length: C }, (_, c) => c).sort((a, b) => refusedBy(b) - refusedBy(a)).slice(0, 3);
  const users = order.map((c) => {
    const arrivals = userArrivals.slice(c * 1440, (c + 1) * 1440);
    const upperPerMin = new Float64Array(1440);
    for (let m = 0; m < 1440; m++) upperPerMin[m] = f.upper[0][c * trace.windows + Math.floor((from + m * 60) / trace.windowSec)] * 60;
    return {
      client: `${trace.model}:${trace.clientIds[c]}`,
      arrivals,
      upperPerMin,
      refusedForesight: ft.refusedTimeline!.slice(c * 1440, (c + 1) * 1440),
      refusedFixedWindow: fw.refusedTimeline!.slice(c * 1440, (c + 1) * 1440),
    };
  });
  return { model: trace.model, day, demandMean, demandMax, capacity, users };
}

/** One capacity policy of {@link replayDemand}. */
export type DemandPolicy = { kind: "static"; replicas: number } | { kind: "hpa"; target: number } | { kind: "oracle"; factor: number };

/**
 * Replays a bare per-second demand series through one capacity policy and the queue model, every
 * second scored (no traffic model, no gaps): the harness's capacity and service model on its own,
 * for hand-computed checks. Returns the figures and the ready replicas of every second.
 */
export function replayDemand(demand: Float64Array, R: number, policy: DemandPolicy, p: ReplayParams, mods: PolicyModules, initialReplicas: number): { figures: PolicyFigures; ready: Int32Array; existing: Int32Array } {
  const windowSec = 600;
  const windows = Math.ceil(demand.length / windowSec);
  const trace: PoolTrace = {
    model: "demand", clientIds: [0], windows, windowSec, requests: new Float64Array(windows), dist: new Uint8Array(windows), shape: new Float64Array(windows),
    gap: new Uint8Array(windows), refilledFrom: new Int32Array(windows).fill(-1),
  };
  const padded = new Float64Array(windows * windowSec);
  padded.set(demand);
  const hist: PoolHistory = { medianPerSec: NaN, replicaRatePerSec: R, peakPerSec: NaN, p99PerSec: NaN, staticPeakReplicas: 0, staticP99Replicas: 0, quotaPerWindow: new Float64Array(1), demand: padded };
  const cx: SimFactoryContext = { trace, p, R, hist, demand: padded, forecasts: new Map(), mods, initialReplicas };
  const sim = policy.kind === "static" ? staticSim("static", policy.replicas, p.maxWaitSec) : policy.kind === "hpa" ? hpaSim(cx, policy.target) : oracleSim(cx, policy.factor);
  const ready = new Int32Array(demand.length);
  const existing = new Int32Array(demand.length);
  const observe = sim.observe;
  sim.observe = (t, a, adm) => {
    ready[t] = sim.rs.ready;
    existing[t] = sim.rs.existing;
    observe?.(t, a, adm);
  };
  simulateSpan({ trace, p, R, fromSec: 0, scoreFrom: 0, toSec: demand.length, demand: padded, perClient: false, sims: [sim], forecasts: new Map(), classifyQuantile: 0.9 });
  return { figures: sim.run.figures, ready, existing };
}
