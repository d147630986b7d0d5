/**
 * The evaluation harness: replays a per-client rate trace through per-user forecasters one bucket
 * at a time (counts are fed at bucket close, no events are synthesised), forecasts every
 * configured horizon from data up to the bucket just closed, and scores the test split.
 *
 * Protocol (defaults): clients with >= 1,000 requests and a full trace (at least 2 × trainWindows
 * buckets); train = buckets [0, trainWindows), test = the rest; every test bucket is a target at
 * every horizon h, forecast at origin target − h (a rolling origin); forecasts clipped at 0;
 * MASE scaled by the mean |y[t] − y[t−season]| over the training buckets; clients whose scale is 0
 * are left out (and listed).
 */
import { ForecastOptionError } from "./errors.ts";
import { ErrorAccumulator, geomean, mean, median, seasonalNaiveScale } from "./metrics.ts";
import type { BucketContext, UserForecaster } from "./models.ts";
import { DEFAULT_HW_PARAMS, DEFAULT_SEASON_BUCKETS, EwmaModel, fitEwmaAlpha, HoltWintersModel, NaiveModel, SeasonalNaiveModel, SlotMedianModel } from "./models.ts";
import { LstmLiteModel, LstmWeights, trainLstm } from "./lstm.ts";
import { EnsembleModel, DEFAULT_QUANTILE } from "./ensemble.ts";
import { ResidualQuantile } from "./upper.ts";
import type { ClientSeries } from "./trace.ts";
import type { PrecomputedModel } from "./engine-replay.ts";

/** Model names the harness knows, in report order. */
export const MODEL_NAMES = ["naive", "snaive", "ewma", "hw", "hw-log", "lstm", "ensemble"] as const;
export type ModelName = (typeof MODEL_NAMES)[number];
/** Default horizons, in buckets. */
export const DEFAULT_HORIZONS = [1, 3, 6];
/** Default training split, in buckets (7 days of 10-minute buckets). */
export const DEFAULT_TRAIN_WINDOWS = 1008;
/** Epochs of LSTM-lite pre-training the harness runs when no weights are given. */
export const DEFAULT_EVAL_TRAIN_EPOCHS = 3;
/** Default minimum total requests of a client to be evaluated. */
export const DEFAULT_MIN_REQUESTS = 1000;

/** Options of {@link evaluate}. */
export interface EvalOptions {
  /** Forecast horizons in buckets, each >= 1. Default {@link DEFAULT_HORIZONS}. */
  horizons?: number[];
  /** Buckets in the training split. Default {@link DEFAULT_TRAIN_WINDOWS}. */
  trainWindows?: number;
  /** Minimum total requests of a client. Default {@link DEFAULT_MIN_REQUESTS}. */
  minRequests?: number;
  /** Minimum series length in buckets. Default 2 × trainWindows (as many test buckets as train). */
  minWindows?: number;
  /** Quantile of the upper bounds, 0..1. Default {@link DEFAULT_QUANTILE}. */
  quantile?: number;
  /** Models to run. Default: all of {@link MODEL_NAMES}. */
  models?: ModelName[];
  /** Seasonal period in buckets. Default {@link DEFAULT_SEASON_BUCKETS}. */
  seasonBuckets?: number;
  /** First N eligible clients only (0 = all). Default 0. */
  limit?: number;
  /** Called after each client with progress counters (for a progress line on long runs). */
  onProgress?: (p: { clientsDone: number; clients: number; buckets: number; elapsedMs: number }) => void;
  /**
   * Shared LSTM-lite weights (e.g. from `foresight train`). Default: pre-trained here on the
   * training split of the evaluated clients (never on test buckets), with {@link DEFAULT_EVAL_TRAIN_EPOCHS}.
   */
  lstmWeights?: LstmWeights;
  /** Called once with the LSTM-lite pre-training time when the harness pre-trains. */
  onPretrain?: (info: { sequences: number; epochs: number; elapsedMs: number; loss: number }) => void;
  /** Forecasts computed elsewhere (e.g. by the Engine, see engine-replay.ts), scored under this name. */
  precomputed?: Record<string, PrecomputedModel>;
  /** Extra model factories, keyed by name; override the built-ins. */
  factories?: Partial<Record<string, ModelFactory>>;
}

/** Creates one user's forecaster; `train` is the client's training prefix (for fitted parameters). */
export type ModelFactory = (train: Float64Array, quantile: number) => UserForecaster & { upper?(h: number): number };

/** Metrics of one model at one horizon, across clients. */
export interface HorizonSummary {
  horizon: number;
  mase: { median: number; mean: number };
  smape: { median: number; mean: number };
  /** Geometric mean over clients of MAE / naive MAE. */
  relMaeGeo: number;
  /** Share of test buckets whose actual exceeded the upper bound (pooled over clients). */
  exceedShare: number;
  /** Under-forecast volume: Σ max(0, y − f) / Σ y (pooled). */
  underShare: number;
}

export interface ModelSummary {
  model: string;
  horizons: HorizonSummary[];
  /** Cost of one user update (observe + all horizon forecasts), ns. */
  nsPerUpdate: number;
}

export interface EvalResult {
  protocol: { trainWindows: number; minRequests: number; minWindows: number; horizons: number[]; quantile: number; seasonBuckets: number; feed: string };
  clients: string[];
  skipped: { key: string; reason: string }[];
  models: ModelSummary[];
  /** Per model, per horizon, per client MASE (same order as `clients`). */
  perClientMase: Record<string, Record<string, number[]>>;
  elapsedMs: number;
}

/**
 * The built-in model factories (TypeScript). `lstm` and the ensemble's LSTM member need shared
 * weights; without them the ensemble runs without that member.
 */
export function builtinFactories(seasonBuckets = DEFAULT_SEASON_BUCKETS, weights?: LstmWeights): Record<string, ModelFactory> {
  const f: Record<string, ModelFactory> = {
    naive: () => new NaiveModel(),
    snaive: () => new SeasonalNaiveModel(seasonBuckets),
    ewma: (train) => new EwmaModel(fitEwmaAlpha(train)),
    hw: () => new HoltWintersModel({ ...DEFAULT_HW_PARAMS, log: false }, seasonBuckets),
    "hw-log": () => new HoltWintersModel(DEFAULT_HW_PARAMS, seasonBuckets),
    ensemble: (train, quantile) =>
      new EnsembleModel(ensembleMembers(train, seasonBuckets, weights ? [new LstmLiteModel(weights, seasonBuckets)] : []), { quantile }),
  };
  if (weights) f.lstm = () => new LstmLiteModel(weights, seasonBuckets);
  return f;
}

/**
 * The ensemble's members for one user: naive, seasonal naive, EWMA (alpha fitted on the user's
 * training prefix), damped HW, the median of the last 3 buckets, the median of the same bucket
 * over the last 7 days, then `extra` (LSTM-lite).
 */
export function ensembleMembers(train: Float64Array, seasonBuckets = DEFAULT_SEASON_BUCKETS, extra: UserForecaster[] = []): UserForecaster[] {
  return [
    new NaiveModel(),
    new SeasonalNaiveModel(seasonBuckets),
    new EwmaModel(fitEwmaAlpha(train)),
    new HoltWintersModel(undefined, seasonBuckets),
    new RecentMedianModel(3),
    new SlotMedianModel(undefined, seasonBuckets),
    ...extra,
  ];
}

/** Median of the last k buckets (robust to single spikes; an ensemble member). */
export class RecentMedianModel implements UserForecaster {
  private readonly ring: Float64Array;
  private readonly sorted: Float64Array;
  private n = 0;
  constructor(readonly k = 3) {
    this.ring = new Float64Array(k);
    this.sorted = new Float64Array(k);
  }
  observe(count: number, _ctx?: BucketContext): void {
    this.ring[this.n % this.k] = count;
    this.n++;
  }
  forecast(_h?: number): number {
    const m = Math.min(this.n, this.k);
    if (m === 0) return 0;
    for (let i = 0; i < m; i++) this.sorted[i] = this.ring[i];
    const v = this.sorted.subarray(0, m).sort();
    return m % 2 ? v[m >> 1] : (v[m / 2 - 1] + v[m / 2]) / 2;
  }
}

/**
 * Pre-trains LSTM-lite on the training split (buckets [0, trainWindows)) of the given clients only,
 * never on their test buckets.
 */
export function pretrainOnTrainSplit(used: ClientSeries[], o: { trainWindows: number; seasonBuckets: number }, onPretrain?: EvalOptions["onPretrain"]): LstmWeights {
  const t0 = performance.now();
  const weights = LstmWeights.init(1);
  const seqs = used.map((s) => ({
    counts: s.requests.subarray(0, o.trainWindows),
    iatCv: s.iatCv.subarray(0, o.trainWindows),
    tokensPerRequest: s.tokensPerRequest.subarray(0, o.trainWindows),
  }));
  const loss = trainLstm(weights, seqs, { epochs: DEFAULT_EVAL_TRAIN_EPOCHS, seasonBuckets: o.seasonBuckets });
  onPretrain?.({ sequences: seqs.length, epochs: DEFAULT_EVAL_TRAIN_EPOCHS, elapsedMs: performance.now() - t0, loss });
  return weights;
}

/** Validates options and returns them with defaults. */
export function resolveOptions(o: EvalOptions) {
  const horizons = o.horizons ?? DEFAULT_HORIZONS;
  if (horizons.length === 0 || horizons.some((h) => !Number.isInteger(h) || h < 1))
    throw new ForecastOptionError(`horizons must be integers >= 1, got ${JSON.stringify(horizons)}`);
  const trainWindows = o.trainWindows ?? DEFAULT_TRAIN_WINDOWS;
  if (!Number.isInteger(trainWindows) || trainWindows < 2) throw new ForecastOptionError(`trainWindows must be an integer >= 2, got ${trainWindows}`);
  const quantile = o.quantile ?? DEFAULT_QUANTILE;
  if (!(quantile > 0 && quantile < 1)) throw new ForecastOptionError(`quantile must be in (0, 1), got ${quantile}`);
  const seasonBuckets = o.seasonBuckets ?? DEFAULT_SEASON_BUCKETS;
  if (seasonBuckets >= trainWindows) throw new ForecastOptionError(`trainWindows (${trainWindows}) must exceed the season (${seasonBuckets}) for the MASE scale`);
  return {
    horizons,
    trainWindows,
    quantile,
    seasonBuckets,
    minRequests: o.minRequests ?? DEFAULT_MIN_REQUESTS,
    minWindows: o.minWindows ?? 2 * trainWindows,
    models: o.models ?? [...MODEL_NAMES],
    limit: o.limit ?? 0,
  };
}

/** Picks the clients the protocol evaluates; the others are returned with the reason. */
export function selectClients(series: ClientSeries[], o: ReturnType<typeof resolveOptions>) {
  const used: ClientSeries[] = [];
  const skipped: { key: string; reason: string }[] = [];
  for (const s of series) {
    if (s.requests.length < o.minWindows) skipped.push({ key: s.key, reason: `${s.requests.length} buckets < ${o.minWindows}` });
    else if (s.totalRequests < o.minRequests) skipped.push({ key: s.key, reason: `${s.totalRequests} requests < ${o.minRequests}` });
    else if (seasonalNaiveScale(s.requests, o.trainWindows, o.seasonBuckets) === 0) skipped.push({ key: s.key, reason: "MASE scale is 0" });
    else used.push(s);
  }
  return { used: o.limit > 0 ? used.slice(0, o.limit) : used, skipped };
}

/** Runs the protocol over `series` and summarises per model and horizon. */
export function evaluate(series: ClientSeries[], opts: EvalOptions = {}): EvalResult {
  const o = resolveOptions(opts);
  const known = new Set<string>([...MODEL_NAMES, ...Object.keys(opts.factories ?? {}), ...Object.keys(opts.precomputed ?? {})]);
  for (const m of o.models) if (!known.has(m)) throw new ForecastOptionError(`unknown model "${m}" (known: ${[...known].join(", ")})`);
  const { used, skipped } = selectClients(series, o);
  if (used.length === 0) throw new ForecastOptionError(`no client meets the protocol (${skipped.length} skipped, e.g. ${skipped[0]?.key}: ${skipped[0]?.reason})`);
  let weights = opts.lstmWeights;
  if (!weights && (o.models.includes("lstm") || o.models.includes("ensemble"))) weights = pretrainOnTrainSplit(used, o, opts.onPretrain);
  const factories: Record<string, ModelFactory> = { ...builtinFactories(o.seasonBuckets, weights) };
  for (const [k, f] of Object.entries(opts.factories ?? {})) if (f) factories[k] = f;
  const H = o.horizons;
  const maxH = Math.max(...H);
  const started = performance.now();
  const acc: Record<string, ErrorAccumulator[][]> = {};
  const ns: Record<string, number> = {};
  let updates = 0;
  let buckets = 0;
  const preds = H.map(() => new Float64Array(0));
  const uppers = H.map(() => new Float64Array(0));
  const withNaive = o.models.includes("naive") ? o.models : ["naive", ...o.models];
  for (const m of withNaive) {
    acc[m] = H.map(() => []);
    ns[m] = 0;
  }
  const ctx: BucketContext = { index: 0, slotOfDay: 0, dayOfWeek: 0, iatCv: 0, tokensPerRequest: 0, throttledShare: 0 };
  used.forEach((s, ci) => {
    const y = s.requests;
    const T = y.length;
    const train = y.subarray(0, o.trainWindows);
    for (let i = 0; i < H.length; i++) {
      if (preds[i].length < T) {
        preds[i] = new Float64Array(T);
        uppers[i] = new Float64Array(T);
      }
    }
    for (const name of withNaive) {
      const pre = opts.precomputed?.[name];
      if (pre) {
        const got = pre.byKey.get(s.key);
        if (!got) throw new ForecastOptionError(`precomputed model "${name}" has no forecasts for ${s.key}`);
        for (let i = 0; i < H.length; i++) {
          const a = new ErrorAccumulator();
          const tracker = new ResidualQuantile(o.quantile);
          for (let target = H[i]; target < T; target++) {
            const f = got.preds[i][target];
            const up = got.uppers ? got.uppers[i][target] : tracker.upper(f);
            if (!got.uppers) tracker.update(y[target], f);
            if (target >= o.trainWindows) a.add(y[target], f, up);
          }
          acc[name][i].push(a);
        }
        continue;
      }
      const model = factories[name](train, o.quantile);
      // Models without their own bound get a residual-quantile tracker, so coverage compares.
      const ownUpper = typeof model.upper === "function";
      const trackers = ownUpper ? [] : H.map(() => new ResidualQuantile(o.quantile));
      const t0 = process.hrtime.bigint();
      for (let t = 0; t < T; t++) {
        ctx.index = t;
        ctx.slotOfDay = t % o.seasonBuckets;
        ctx.dayOfWeek = Math.floor(t / o.seasonBuckets) % 7;
        ctx.iatCv = s.iatCv[t];
        ctx.tokensPerRequest = s.tokensPerRequest[t];
        model.observe(y[t], ctx);
        for (let i = 0; i < H.length; i++) {
          const target = t + H[i];
          if (target >= T) continue;
          preds[i][target] = Math.max(0, model.forecast(H[i]));
          if (ownUpper) uppers[i][target] = model.upper!(H[i]);
        }
      }
      ns[name] += Number(process.hrtime.bigint() - t0);
      updates += T;
      buckets += T;
      for (let i = 0; i < H.length; i++) {
        const a = new ErrorAccumulator();
        const h = H[i];
        for (let target = h; target < T; target++) {
          if (!ownUpper) {
            // Bound as known at the origin, then score the forecast (its target is now known).
            uppers[i][target] = trackers[i].upper(preds[i][target]);
            if (target - h >= 0) trackers[i].update(y[target], preds[i][target]);
          }
          if (target >= o.trainWindows) a.add(y[target], preds[i][target], uppers[i][target]);
        }
        acc[name][i].push(a);
      }
    }
    opts.onProgress?.({ clientsDone: ci + 1, clients: used.length, buckets, elapsedMs: performance.now() - started });
  });
  const clients = used.map((s) => s.key);
  const scales = used.map((s) => seasonalNaiveScale(s.requests, o.trainWindows, o.seasonBuckets));
  const perClientMase: EvalResult["perClientMase"] = {};
  const models: ModelSummary[] = o.models.map((name) => {
    perClientMase[name] = {};
    const horizons = H.map((h, i) => {
      const list = acc[name][i];
      const mase = list.map((a, c) => a.mae / scales[c]);
      perClientMase[name][String(h)] = mase;
      const smape = list.map((a) => a.smape / a.n);
      const rel = list.map((a, c) => a.mae / acc.naive[i][c].mae);
      const exceed = list.reduce((s, a) => s + a.exceed, 0) / list.reduce((s, a) => s + a.withUpper, 0);
      const under = list.reduce((s, a) => s + a.under, 0) / list.reduce((s, a) => s + a.actual, 0);
      return {
        horizon: h,
        mase: { median: median(mase), mean: mean(mase) },
        smape: { median: median(smape), mean: mean(smape) },
        relMaeGeo: geomean(rel),
        exceedShare: exceed,
        underShare: under,
      };
    });
    const pre = opts.precomputed?.[name];
    return { model: name, horizons, nsPerUpdate: pre ? pre.nsPerUpdate : ns[name] / (updates / withNaive.length) };
  });
  return {
    protocol: { trainWindows: o.trainWindows, minRequests: o.minRequests, minWindows: o.minWindows, horizons: H, quantile: o.quantile, seasonBuckets: o.seasonBuckets, feed: "counts fed at bucket close (no synthesised events)" },
    clients,
    skipped,
    models,
    perClientMase,
    elapsedMs: performance.now() - started,
  };
  void maxH;
}
