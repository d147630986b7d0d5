// The one schema of every Foresight tunable. Every default lives here and only here: the
// `foresight config defaults` output, DEFAULT_CONFIG and the docs all come from this file.
// Objects are strict (an unknown key is an error, which catches typos such as `maxReplica`).
// Sections use `.prefault({})` so a missing section is parsed from `{}` and gets its defaults.
import { z } from "zod";
// The engine's defaults (src/engine/options.ts, the Engine API's own) are imported; the
// processor's schedule defaults are defined here and the processor imports them. The schema
// imports no processor code, so the dependency runs processor -> config -> engine.
import {
  DEFAULT_ALPHA, DEFAULT_ALPHA_DECAY, DEFAULT_ALPHA_MAX, DEFAULT_ALLOWED_LATENESS_MS, DEFAULT_BETA,
  DEFAULT_BUCKET_WIDTH_MS, DEFAULT_CAPACITY_USERS, DEFAULT_COUNTS_CAPACITY, DEFAULT_GAMMA,
  DEFAULT_HORIZON_BUCKETS, DEFAULT_INGRESS_CAPACITY, DEFAULT_LSTM_LEARNING_RATE, DEFAULT_LSTM_MIN_COUNT_PER_BUCKET,
  DEFAULT_LSTM_TRAIN_USERS_PER_BUCKET, DEFAULT_PHI, DEFAULT_SEASON_POINTS, DEFAULT_TIME_OF_DAY_DAY_WEIGHT,
  DEFAULT_TRACKING_SMOOTHING, DEFAULT_TRACKING_THRESHOLD, DEFAULT_UPPER_QUANTILE, DEFAULT_VARIANCE_SMOOTHING, MAX_TICK_THREADS,
} from "../engine/options.ts";
// So are the defaults of the components that also run without a config (the publisher SDK, the
// HTTP server, the logger, the connection); settings only the processor reads are defined here.
import { DEFAULT_NATS_SERVERS } from "../nats/connect.ts";
import { DEFAULT_HTTP_HOST, DEFAULT_HTTP_PORT } from "../obs/http.ts";
import { DEFAULT_LOG_LEVEL } from "../obs/logger.ts";
import { DEFAULT_DIRECTORY_BUCKET } from "../telemetry/directory.ts";
import { DEFAULT_PARTITIONS, DEFAULT_SUBJECT_PREFIX } from "../telemetry/frame.ts";
import { DEFAULT_TELEMETRY_STREAM } from "../telemetry/stream.ts";

const int = () => z.int();
/** Names JetStream accepts for streams, KV buckets and object stores. */
const natsName = () => z.string().regex(/^[A-Za-z0-9_-]+$/, "must contain only letters, digits, '_' and '-'");
/** A DNS-1123 label: Kubernetes object names, pool names. */
const dnsLabel = () =>
  z
    .string()
    .max(63)
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a DNS label (lowercase letters, digits, '-')");

// ---------------------------------------------------------------------------------------------
// engine: per-user aggregation and forecasting (the WASM engine).

// Ranges and defaults match the engine's own checks (src/engine/options.ts), so a document the
// store accepts is one the engine starts with.
const HoltWintersSchema = z
  .strictObject({
    /** Base level smoothing, and the lower bound of the adaptive alpha, in (0, 1). */
    alpha: z.number().gt(0).lt(1).default(DEFAULT_ALPHA),
    /** Trend smoothing, in [0, 1). */
    beta: z.number().min(0).lt(1).default(DEFAULT_BETA),
    /** Seasonal smoothing, in [0, 1). */
    gamma: z.number().min(0).lt(1).default(DEFAULT_GAMMA),
    /** Trend damping factor, in [0, 1] (1 = undamped). */
    phi: z.number().min(0).max(1).default(DEFAULT_PHI),
    /** Upper bound of the adaptive alpha (Trigg-Leach), in [alpha, 1). */
    alphaMax: z.number().gt(0).lt(1).default(DEFAULT_ALPHA_MAX),
    /** |tracking signal| above which alpha rises toward alphaMax, in (0, 1). */
    trackingThreshold: z.number().gt(0).lt(1).default(DEFAULT_TRACKING_THRESHOLD),
    /** Smoothing of the tracking signal's error averages, in (0, 1). */
    trackingSmoothing: z.number().gt(0).lt(1).default(DEFAULT_TRACKING_SMOOTHING),
    /** Per-bucket fraction by which alpha decays back to its base when the signal is quiet, in (0, 1]. */
    alphaDecay: z.number().gt(0).max(1).default(DEFAULT_ALPHA_DECAY),
    /** Smoothing of the one-step error variance (upper bound width), in (0, 1). */
    varianceSmoothing: z.number().gt(0).lt(1).default(DEFAULT_VARIANCE_SMOOTHING),
    /** Weight one day of data has in the time-of-day profile, in (0, 1]. */
    timeOfDayDayWeight: z.number().gt(0).max(1).default(DEFAULT_TIME_OF_DAY_DAY_WEIGHT),
  })
  .superRefine((v, ctx) => {
    if (v.alphaMax < v.alpha) {
      ctx.addIssue({ code: "custom", path: ["alphaMax"], message: `must be >= alpha (${v.alpha})` });
    }
  });

// LSTM-lite: an 8-unit GRU cell whose weights all users share (its size is fixed by the weights
// blob format, see docs/forecasting.md); used when engine.forecastModel is "ensemble".
const LstmSchema = z.strictObject({
  /** File of pre-trained shared weights (an LSTL blob from `foresight train`); unset = built-in initialisation. */
  weightsFile: z.string().min(1).optional(),
  /** Users whose step trains the shared weights at each closed bucket (bounds the training cost per tick); 0 = frozen. */
  trainUsersPerBucket: int().min(0).max(1_048_576).default(DEFAULT_LSTM_TRAIN_USERS_PER_BUCKET),
  /** Adam learning rate of the online training, > 0. */
  learningRate: z.number().positive().max(1).default(DEFAULT_LSTM_LEARNING_RATE),
  /**
   * Least mean request count per bucket for which a user runs the GRU (the dense tier); sparser
   * users keep the other ensemble members and leave LSTM-lite out, at well under half its tick
   * cost. 0 = every user runs the GRU. Live.
   */
  minCountPerBucket: z.number().min(0).max(1_000_000).default(DEFAULT_LSTM_MIN_COUNT_PER_BUCKET),
  /**
   * Version of the shared weights in the model registry (nats.objectStore.models) that engines run,
   * e.g. "v3"; unset = weightsFile or the built-in initialisation. Live: engines swap weights in
   * place without losing per-user state; setting an older version is the rollback.
   */
  modelVersion: z.string().regex(/^v[1-9][0-9]*$/, 'must look like "v1", "v2", ...').optional(),
  /** Scheduled retraining of the shared weights from recent history (`foresight models retrain`). */
  retrain: z
    .strictObject({
      /** Period of retraining, ms; 0 = only when run by hand. */
      intervalMs: int().min(0).max(30 * 86_400_000).default(0),
      /** Buckets of recent history (forecast ticks kept in JetStream) a candidate trains and is scored on. */
      historyBuckets: int().min(24).max(100_000).default(2016),
      /** Most recent buckets held out for the promotion test (never trained on). */
      holdoutBuckets: int().min(6).max(10_000).default(144),
      /** Weight of the windows around exceedances (observed above the upper bound) in training, >= 1. */
      exceedanceWeight: int().min(1).max(20).default(3),
      /** Training passes over the history. */
      epochs: int().min(1).max(50).default(2),
      /** Users sampled for training (the busiest ones), bounding the retraining cost. */
      maxUsers: int().min(1).max(1_000_000).default(2000),
      /** Relative holdout error reduction a candidate needs to be promoted (0.01 = 1 %). */
      minImprovement: z.number().min(0).max(1).default(0.01),
    })
    .prefault({}),
});

/** Milliseconds in a day: bucket widths divide it, so a season is a whole number of buckets. */
const DAY_MS = 86_400_000;
/** Most ring buckets a user's late-event window may take (engine memory layout). */
const MAX_RING_BUCKETS = 8;

const EngineSchema = z
  .strictObject({
    /** Width of one aggregation bucket, ms; must divide a day. */
    bucketWidthMs: int().min(1000).max(600_000).default(DEFAULT_BUCKET_WIDTH_MS),
    /** How late an event may arrive and still count in its bucket, ms; at most 6 bucket widths. */
    allowedLatenessMs: int().min(0).max(3_600_000).default(DEFAULT_ALLOWED_LATENESS_MS),
    /** Users the engine holds state for (memory is sized once from it; LRU eviction beyond). */
    capacityUsers: int().min(1).max(4_194_304).default(DEFAULT_CAPACITY_USERS),
    /** Points of the daily seasonal profile; at most the buckets of a day. */
    seasonPoints: int().min(24).max(144).default(DEFAULT_SEASON_POINTS),
    /** Prediction horizon, in buckets after the last closed one; at most the buckets of a day. */
    horizonBuckets: int().min(1).max(1440).default(DEFAULT_HORIZON_BUCKETS),
    /** Quantile of the upper forecast bound used for allocation, in (0.5, 0.999]. */
    upperQuantile: z.number().gt(0.5).max(0.999).default(DEFAULT_UPPER_QUANTILE),
    holtWinters: HoltWintersSchema.prefault({}),
    /**
     * Forecaster whose output drives allocation: "ensemble" (Holt-Winters, LSTM-lite, naive,
     * seasonal naive and slot medians combined per user by their recent errors; 1,392 B of state
     * per user, bench/results/engine.json) or "hw" (Holt-Winters alone; 816 B per user).
     * The processor's default is the ensemble, the more accurate one (docs/forecasting.md).
     */
    forecastModel: z.enum(["hw", "ensemble"]).default("ensemble"),
    lstm: LstmSchema.prefault({}),
    /** Closed buckets without events after which a user's state is dropped; 0 = never (LRU only). */
    expireAfterBuckets: int().min(0).max(2_147_483_647).default(0),
    /** Most buckets one tick closes after a long gap (older ones are skipped); default one day of buckets. */
    maxCatchUpBuckets: int().min(1).optional(),
    /**
     * Threads that run a tick's per-user work per engine (the processor's thread and tickThreads - 1
     * workers over the engine's shared memory); 0 = one per core, at most 4. The forecasts are the
     * same for any value.
     */
    tickThreads: int().min(0).max(MAX_TICK_THREADS).default(0),
    /** Event records per engine ingress buffer (one WASM call per this many). */
    ingressCapacity: int().min(1).max(1_048_576).default(DEFAULT_INGRESS_CAPACITY),
    /** Aggregate records per counts buffer (cold replay path). */
    countsCapacity: int().min(1).max(1_048_576).default(DEFAULT_COUNTS_CAPACITY),
  })
  .superRefine((e, ctx) => {
    if (DAY_MS % e.bucketWidthMs !== 0) {
      ctx.addIssue({ code: "custom", path: ["bucketWidthMs"], message: `must divide a day (${DAY_MS} ms) exactly` });
      return;
    }
    const dayBuckets = DAY_MS / e.bucketWidthMs;
    if (Math.ceil(e.allowedLatenessMs / e.bucketWidthMs) + 2 > MAX_RING_BUCKETS) {
      ctx.addIssue({
        code: "custom",
        path: ["allowedLatenessMs"],
        message: `must be <= ${(MAX_RING_BUCKETS - 2) * e.bucketWidthMs} (6 bucket widths of ${e.bucketWidthMs} ms)`,
      });
    }
    if (e.forecastModel === "ensemble" && e.horizonBuckets > 6) {
      ctx.addIssue({ code: "custom", path: ["horizonBuckets"], message: `must be <= 6 with forecastModel "ensemble" (its members forecast at most 6 buckets ahead)` });
    }
    for (const key of ["seasonPoints", "horizonBuckets", "maxCatchUpBuckets"] as const) {
      const v = e[key];
      if (v !== undefined && v > dayBuckets) {
        ctx.addIssue({ code: "custom", path: [key], message: `must be <= ${dayBuckets} (the buckets of a day at bucketWidthMs ${e.bucketWidthMs})` });
      }
    }
  });

// ---------------------------------------------------------------------------------------------
// schedule: when the processor forecasts, trains and checkpoints.

/** Default interval between forecast ticks, ms (the processor's default too). */
export const DEFAULT_TICK_INTERVAL_MS = 15_000;
/** Default interval between engine checkpoints, ms (the processor's default too). */
export const DEFAULT_CHECKPOINT_INTERVAL_MS = 300_000;
/** Default partition lease TTL, ms: a dead process's partitions are taken over after this long. */
export const DEFAULT_LEASE_TTL_MS = 15_000;

const ScheduleSchema = z.strictObject({
  /** Interval between forecast ticks, ms. */
  tickIntervalMs: int().min(100).max(3_600_000).default(DEFAULT_TICK_INTERVAL_MS),
  /** Interval between engine state checkpoints to the object store, ms. */
  checkpointIntervalMs: int().min(1000).max(86_400_000).default(DEFAULT_CHECKPOINT_INTERVAL_MS),
  /** TTL of a processor's partition lease, ms: a dead processor's partitions move after this long. */
  leaseTtlMs: int().min(100).max(600_000).default(DEFAULT_LEASE_TTL_MS),
});

// ---------------------------------------------------------------------------------------------
// pools: the Kubernetes workloads the allocator sizes (policy: src/allocator, docs/allocator.md).

/** How the allocator acts on a pool. */
export const POOL_MODES = ["shadow", "scale", "hpa-floor", "resize"] as const;
/** How a pool's upper bound is formed from its users' forecasts. */
export const DEMAND_METHODS = ["variance", "sum", "blend"] as const;

/** A Kubernetes resource quantity of bits per second, as the bandwidth CNI plugin reads it ("10M", "1G"). */
const bandwidthQuantity = () => z.string().regex(/^[0-9]+(\.[0-9]+)?[kMGT]?$/, 'must be a quantity such as "10M" or "1G" (bits per second)');

const PoolMatchSchema = z.strictObject({
  /** Routes (request path prefixes or route names as the telemetry reports them) whose traffic this pool serves. */
  routes: z.array(z.string().min(1)).default([]),
  /** Model names (LLM pools) whose traffic this pool serves. */
  models: z.array(z.string().min(1)).default([]),
  /**
   * Plans from the user directory whose users belong to this pool (after explicit `users`, before
   * `segments`; a plan listed by two pools belongs to the first).
   */
  plans: z.array(z.string().min(1)).default([]),
  /** Segments from the user directory whose users belong to this pool (after `users` and `plans`). */
  segments: z.array(z.string().min(1)).default([]),
  /** Explicit user keys that belong to this pool (checked first). */
  users: z.array(z.string().min(1)).default([]),
  /** Users no other pool claims belong to this pool (at most one pool may say so). */
  default: z.boolean().default(false),
});

const PoolBandwidthSchema = z.strictObject({
  /** Fixed `kubernetes.io/ingress-bandwidth` per pod (bits/s quantity); absent = derived or none. */
  ingress: bandwidthQuantity().optional(),
  /** Fixed `kubernetes.io/egress-bandwidth` per pod (bits/s quantity); absent = derived or none. */
  egress: bandwidthQuantity().optional(),
  /** Bytes one request brings in; with it the ingress annotation is derived from a replica's rate. */
  ingressBytesPerRequest: z.number().positive().optional(),
  /** Bytes one response sends; with it the egress annotation is derived from a replica's rate. */
  egressBytesPerRequest: z.number().positive().optional(),
});

const PoolReactiveSchema = z.strictObject({
  /** Target utilization of the modelled HPA v2 whose answer is the reactive floor, in (0, 1]. */
  targetUtilization: z.number().gt(0).max(1).default(0.7),
  /** Window the observed rate is averaged over for the reactive floor, s. */
  metricWindowSec: int().min(1).max(3600).default(60),
});

const PoolSchema = z
  .strictObject({
    /** Unique pool name (DNS label). Required. */
    name: dnsLabel(),
    workload: z.strictObject({
      /** API version of the workload. */
      apiVersion: z.literal("apps/v1").default("apps/v1"),
      /** Workload kind. */
      kind: z.enum(["Deployment", "StatefulSet"]).default("Deployment"),
      /** Namespace of the workload. */
      namespace: dnsLabel().default("default"),
      /** Name of the workload. Required. */
      name: z.string().min(1).max(253),
      /** Container whose resources are patched; default: the first container. */
      container: z.string().min(1).optional(),
      /** Name of the HPA that manages the workload (mode "hpa-floor"); default: the workload's name. */
      hpaName: z.string().min(1).max(253).optional(),
    }),
    costModel: z.strictObject({
      /** Requests per second one replica serves at full utilization (its capacity). Required. */
      requestsPerSecPerReplica: z.number().positive(),
      /** Tokens per second one replica serves at full utilization (LLM pools); absent = requests only. */
      tokensPerSecPerReplica: z.number().positive().optional(),
      /** Tokens one request carries (input + output) when forecasts give requests only; used with tokensPerSecPerReplica. */
      tokensPerRequest: z.number().positive().optional(),
      /** CPU one replica requests, millicores. */
      cpuPerReplicaMillicores: int().positive().default(1000),
      /** Memory one replica requests, MiB. */
      memoryPerReplicaMiB: int().positive().default(1024),
    }),
    /** Which users' traffic this pool serves; a pool without rules serves nobody unless it is the default. */
    match: PoolMatchSchema.prefault({}),
    /** Share of the cluster budget: higher priorities are served first when the budget is short. */
    priority: int().min(0).max(1000).default(0),
    /** Lowest replica count the allocator sets. */
    minReplicas: int().min(0).max(10_000).default(1),
    /** Highest replica count the allocator sets. */
    maxReplicas: int().min(1).max(10_000).default(10),
    /** Utilization the predictive replicas aim at, in (0, 1] (replicas = demand / (capacity × this)). */
    targetUtilization: z.number().gt(0).max(1).default(0.8),
    /** Extra capacity over the forecast upper bound, as a fraction (0.1 = +10 %). */
    headroom: z.number().min(0).max(10).default(0.1),
    /** A scale-down happens only to the highest requirement of this trailing window, s. */
    stabilizationWindowSec: int().min(0).max(86_400).default(300),
    /** Most replicas one scale-down decision removes; absent = from scaleDownMaxStepPercent. */
    scaleDownMaxStepReplicas: int().min(1).max(10_000).optional(),
    /** Most replicas one scale-down decision removes, % of the current count (at least 1 replica). */
    scaleDownMaxStepPercent: z.number().gt(0).max(100).default(50),
    /** Relative change below which no change is made (0.1 = 10 %); scale-ups past the floor always happen. */
    tolerance: z.number().min(0).max(1).default(0.1),
    /** Time from a scale-up patch until a new pod serves, s (how far ahead to act). */
    podStartDelaySec: int().min(0).max(3600).default(30),
    /** Interval between the allocator's decisions for this pool, ms. */
    decisionIntervalMs: int().min(1000).max(3_600_000).default(15_000),
    /** Pool upper bound: "variance" (sum of means + z·√Σσ²), "sum" (sum of per-user bounds), "blend". */
    demandMethod: z.enum(DEMAND_METHODS).default("variance"),
    /**
     * Quantile of the pool's bound in "variance" and "blend" (z of Σσ²), in (0.5, 0.9999]. Above the
     * engine's per-user quantile because users' forecast errors are correlated: at 0.95 the
     * combined bound covered 88 % of real windows, at 0.99 about 94 % (docs/allocator.md).
     */
    upperQuantile: z.number().gt(0.5).max(0.9999).default(0.99),
    /** Weight of the "variance" bound in "blend" (the rest is "sum"), in [0, 1]. */
    blendWeight: z.number().min(0).max(1).default(0.5),
    /** The modelled HPA whose answer is the floor of every allocation. */
    reactive: PoolReactiveSchema.prefault({}),
    /** `kubernetes.io/ingress-bandwidth` / `egress-bandwidth` pod annotations; absent = none. */
    bandwidth: PoolBandwidthSchema.optional(),
    /**
     * "shadow": decisions computed, logged and exported, nothing patched; "scale": replicas through
     * the scale subresource, resources by server-side apply; "hpa-floor": the HPA's minReplicas is
     * set to the predictive requirement; "resize": as "scale" plus in-place pod resize of CPU/memory.
     */
    mode: z.enum(POOL_MODES).default("shadow"),
  })
  .superRefine((p, ctx) => {
    if (p.minReplicas > p.maxReplicas) {
      ctx.addIssue({ code: "custom", path: ["maxReplicas"], message: `must be >= minReplicas (${p.minReplicas})` });
    }
    if (p.costModel.tokensPerRequest !== undefined && p.costModel.tokensPerSecPerReplica === undefined) {
      ctx.addIssue({ code: "custom", path: ["costModel", "tokensPerSecPerReplica"], message: "required when costModel.tokensPerRequest is set" });
    }
  });

const PoolsSchema = z.array(PoolSchema).superRefine((pools, ctx) => {
  const seen = new Map<string, number>();
  let defaultPool = -1;
  pools.forEach((p, i) => {
    const first = seen.get(p.name);
    if (first !== undefined) {
      ctx.addIssue({ code: "custom", path: [i, "name"], message: `duplicate pool name "${p.name}" (also pools.${first}.name)` });
    } else seen.set(p.name, i);
    if (p.match.default) {
      if (defaultPool >= 0) ctx.addIssue({ code: "custom", path: [i, "match", "default"], message: `only one pool may be the default (also pools.${defaultPool})` });
      else defaultPool = i;
    }
  });
});

// ---------------------------------------------------------------------------------------------
// cluster: the budget all pools share (by priority, then max-min fair share).

const ClusterSchema = z.strictObject({
  /** CPU all pools together may request, millicores. */
  maxCpuMillicores: int().positive().default(64_000),
  /** Memory all pools together may request, MiB. */
  maxMemoryMiB: int().positive().default(262_144),
  /** Replicas all pools together may run. */
  maxReplicasTotal: int().positive().default(100),
});

// ---------------------------------------------------------------------------------------------
// throttle: per-user token grants and gateway enforcement.

const SafeLimitSchema = z.strictObject({
  /** Requests per second a user of this plan may send when no grant is available. */
  requestsPerSec: z.number().positive(),
  /** Tokens per second a user of this plan may use when no grant is available; absent = unlimited. */
  tokensPerSec: z.number().positive().optional(),
});

const ThrottleSchema = z
  .strictObject({
    /** Fallback limits per plan, used when a gateway has no valid grant; "default" is required. */
    safeLimits: z
      .record(z.string().min(1), SafeLimitSchema)
      .superRefine((v, ctx) => {
        if (!("default" in v)) {
          ctx.addIssue({ code: "custom", path: ["default"], message: 'required: the plan used for users without a known plan' });
        }
      })
      .default({ default: { requestsPerSec: 10, tokensPerSec: 20_000 } }),
    /** Lifetime of a grant (a lease), ms; after it a gateway falls back to the safe limit. */
    grantTtlMs: int().min(1000).max(3_600_000).default(30_000),
    /** How often grants are renewed, ms; must be below grantTtlMs so grants never lapse. */
    grantRefreshMs: int().min(100).max(3_600_000).default(10_000),
    /** Burst allowance over the granted rate (token bucket capacity = rate x factor x 1 s). */
    burstFactor: z.number().min(1).max(100).default(1.5),
    /** Rate-limit response headers: IETF RateLimit draft (`RateLimit` / `RateLimit-Policy`), X-RateLimit-*, or none. */
    headerStyle: z.enum(["ietf", "x-ratelimit", "none"]).default("ietf"),
    /** Plan limits, requests/s and tokens/s: the outer bound a user of the plan reaches while its pool has spare; "default" is required and serves plans not listed. */
    plans: z
      .record(z.string().min(1), SafeLimitSchema)
      .superRefine((v, ctx) => {
        if (!("default" in v)) {
          ctx.addIssue({ code: "custom", path: ["default"], message: 'required: the plan used for users without a known plan' });
        }
      })
      .default({ default: { requestsPerSec: 50, tokensPerSec: 100_000 } }),
    /** Shadow mode: decisions are computed, would-throttle events logged and counted, every request allowed. Default false. */
    shadow: z.boolean().default(false),
    /** Policy name in the RateLimit-Policy header (IETF style). Default "foresight". */
    policyName: z.string().regex(/^[a-z][a-z0-9_-]*$/, "must be a token (lowercase letter, then letters, digits, '_', '-')").default("foresight"),
    /** Request header holding the user key (lowercase). Default "x-user-id". */
    userKeyHeader: z.string().min(1).regex(/^[a-z0-9-]+$/, "must be a lowercase header name").default("x-user-id"),
    /** Request header holding an API key used as the user key when userKeyHeader is absent; "authorization" reads a Bearer token. Default "x-api-key". */
    apiKeyHeader: z.string().min(1).regex(/^[a-z0-9-]+$/, "must be a lowercase header name").default("x-api-key"),
    /** Request header naming the user's plan (optional; absent = the plan in the grant, else "default"). Default "x-plan". */
    planHeader: z.string().min(1).regex(/^[a-z0-9-]+$/, "must be a lowercase header name").default("x-plan"),
    /** Subject token after the prefix for exceedance events: `<prefix>.<token>.<partition>`. Default "exceedances". */
    exceedanceSubject: z.string().regex(/^[A-Za-z0-9_-]+$/, "must be one subject token").default("exceedances"),
    /** Full grant snapshot of each partition every this many forecast ticks (deltas in between). Default 4. */
    snapshotEveryTicks: int().min(1).max(1000).default(4),
    /** How often the grant service publishes pool allocation and pressure, ms (gateways know a pool is short within this). Default 1000. */
    poolStateIntervalMs: int().min(100).max(10_000).default(1000),
    /** How often each gateway reports its per-user demand (Doorman-style share of a user's grant), ms. Default 500. */
    demandReportIntervalMs: int().min(50).max(60_000).default(500),
    /** Per-user slots in a gateway's table (power of two is not required; rounded up). Default 2,097,152 (1M users at load 0.5). */
    maxUsers: int().min(1024).max(67_108_864).default(2_097_152),
    /**
     * Exceedance feedback on the bound a user's grant is made from (src/feedback; variants measured
     * by `npm run bench:feedback`): "bias" adds the last miss and lets it decay, "hold" keeps the
     * observed rate (+margin) for holdTicks, "none" grants from the forecast alone.
     */
    feedback: z
      .strictObject({
        /** Variant. Default "bias". */
        mode: z.enum(["none", "bias", "hold"]).default("bias"),
        /** Ticks a correction lasts after the last exceedance. Default 6. */
        holdTicks: int().min(1).max(65_535).default(6),
        /** "hold": margin over the observed rate, fraction. Default 0.1. */
        margin: z.number().min(0).max(10).default(0.1),
        /** "bias": share of the correction kept per tick. Default 0.7. */
        decay: z.number().min(0).max(1).default(0.7),
      })
      .prefault({}),
  })
  .superRefine((t, ctx) => {
    if (t.grantRefreshMs >= t.grantTtlMs) {
      ctx.addIssue({ code: "custom", path: ["grantRefreshMs"], message: `must be < grantTtlMs (${t.grantTtlMs})` });
    }
  });

// ---------------------------------------------------------------------------------------------
// nats: connection (mirrors NatsConnectionSettings in src/nats/connect.ts) and resource names.

const NatsConnectionSchema = z.strictObject({
  /** Server URLs. */
  servers: z.array(z.string().min(1)).min(1).default(() => [...DEFAULT_NATS_SERVERS]),
  /** Connection name shown in the server's monitoring. */
  name: z.string().min(1).default("foresight"),
  /** User for user/password authentication. */
  user: z.string().optional(),
  /** Password for user/password authentication. */
  pass: z.string().optional(),
  /** Token authentication. */
  token: z.string().optional(),
  /** Path of a `.creds` file (JWT + NKey seed). */
  credsFile: z.string().min(1).optional(),
  /** Path of a file holding an NKey seed. */
  nkeySeedFile: z.string().min(1).optional(),
  /** TLS files; `{}` alone requires TLS with system CAs. */
  tls: z
    .strictObject({
      caFile: z.string().min(1).optional(),
      certFile: z.string().min(1).optional(),
      keyFile: z.string().min(1).optional(),
      handshakeFirst: z.boolean().optional(),
    })
    .optional(),
  /** Reconnect attempts; -1 = forever (the pipeline pauses while disconnected). */
  maxReconnectAttempts: int().min(-1).default(-1),
  /** Base wait between reconnect attempts, ms. */
  reconnectTimeWaitMs: int().min(10).max(600_000).default(1000),
  /** Connect / request timeout, ms. */
  timeoutMs: int().min(100).max(600_000).default(5000),
});

/** Default replicas of every stream and bucket (3 or 5 in a cluster); the processor's default too. */
export const DEFAULT_REPLICAS = 1;
/** Default max age of telemetry, ms (a day: enough to rebuild from a day-old checkpoint); the processor's default too. */
export const DEFAULT_TELEMETRY_MAX_AGE_MS = 86_400_000;
/** Default max bytes of the telemetry stream (8 GiB); the processor's default too. */
export const DEFAULT_TELEMETRY_MAX_BYTES = 8_589_934_592;

const NatsSchema = z.strictObject({
  connection: NatsConnectionSchema.prefault({}),
  /** First token of every Foresight subject. */
  subjectPrefix: z
    .string()
    .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, "must be dot-separated tokens without wildcards")
    .default(DEFAULT_SUBJECT_PREFIX),
  streams: z
    .strictObject({
      /** Stream of request telemetry from gateways. */
      telemetry: natsName().default(DEFAULT_TELEMETRY_STREAM),
      /** Stream of per-user forecasts. */
      forecasts: natsName().default("FORESIGHT_FORECASTS"),
      /** Stream of throttle events (feedback). */
      feedback: natsName().default("FORESIGHT_FEEDBACK"),
      /** Stream of rejected telemetry with a reason. */
      deadLetter: natsName().default("FORESIGHT_DEAD_LETTER"),
    })
    .prefault({}),
  /** Telemetry partitions (subjects users are hashed onto). */
  partitions: int().min(1).max(1024).default(DEFAULT_PARTITIONS),
  /** Stream replicas (3 or 5 in a cluster). */
  replicas: z.literal([1, 3, 5]).default(DEFAULT_REPLICAS),
  retention: z
    .strictObject({
      /** Age after which telemetry is dropped, ms (one day). */
      maxAgeMs: int().positive().default(DEFAULT_TELEMETRY_MAX_AGE_MS),
      /** Size of the telemetry stream above which the oldest messages are dropped, bytes (8 GiB). */
      maxBytes: int().positive().default(DEFAULT_TELEMETRY_MAX_BYTES),
    })
    .prefault({}),
  kv: z
    .strictObject({
      /** KV bucket holding the central configuration. */
      configBucket: natsName().default("foresight-config"),
      /** KV bucket of the user directory (user -> plan). */
      directoryBucket: natsName().default(DEFAULT_DIRECTORY_BUCKET),
      /** KV bucket of partition and leader leases. */
      leasesBucket: natsName().default("foresight-leases"),
      /** KV bucket of per-user grants. */
      grantsBucket: natsName().default("foresight-grants"),
    })
    .prefault({}),
  objectStore: z
    .strictObject({
      /** Object store of engine checkpoints. */
      checkpoints: natsName().default("foresight-checkpoints"),
      /** Object store of every version of the shared LSTM-lite weights (the model registry). */
      models: natsName().default("foresight-models"),
    })
    .prefault({}),
});

// ---------------------------------------------------------------------------------------------
// envoy: Envoy's rate limit service (`foresight rls`): how descriptors map onto Foresight users,
// plans and pools, and how the gRPC server behaves (docs/envoy.md).

const DescriptorRuleSchema = z.strictObject({
  /**
   * Descriptor entry key the rule reads, as Envoy's rate-limit actions produce it: "user_id" or
   * "api_key" (request_headers / metadata actions with that descriptor_key), "remote_address",
   * "generic_key", "header_match", "destination_cluster", or any request_headers descriptor_key.
   */
  key: z.string().min(1),
  /** Only entries with exactly this value match (e.g. generic_key "llm-chat"); absent = any value. */
  value: z.string().min(1).optional(),
  /** What a matching entry sets for its descriptor: the user key, the plan, or the pool. */
  sets: z.enum(["user", "plan", "pool"]),
  /** For sets "user": text put before the value so identity sources never collide ("ip:" gives "ip:10.0.0.1"). Default "". */
  prefix: z.string().default(""),
  /** Name set instead of the entry's value (e.g. generic_key "llm-chat" sets pool "chat"); absent = the value itself. */
  to: z.string().min(1).optional(),
});

/** The default rules: a user id beats an API key beats the client address; plan and pool by key. */
const DEFAULT_DESCRIPTOR_RULES = [
  { key: "user_id", sets: "user", prefix: "" },
  { key: "api_key", sets: "user", prefix: "key:" },
  { key: "remote_address", sets: "user", prefix: "ip:" },
  { key: "plan", sets: "plan", prefix: "" },
  { key: "pool", sets: "pool", prefix: "" },
] as const;

const FixedWindowPlanSchema = z.strictObject({
  /** Requests a user of this plan may send per window, > 0. */
  requestsPerWindow: z.number().positive(),
  /** Tokens a user of this plan may use per window; absent = tokens not limited. */
  tokensPerWindow: z.number().positive().optional(),
});

const EnvoySchema = z.strictObject({
  /** Rate-limit domain the RLS answers for; requests naming another domain get INVALID_ARGUMENT. */
  domain: z.string().min(1).default("foresight"),
  /** Address the RLS gRPC server binds. */
  host: z.string().min(1).default("0.0.0.0"),
  /** Port of the Envoy RLS gRPC server (0 = disabled). */
  grpcPort: int().min(0).max(65_535).default(8081),
  descriptors: z
    .strictObject({
      /**
       * Mapping rules, in priority order: for each descriptor, the first rule (in this list) that
       * matches one of its entries sets the user, likewise the plan and the pool. A descriptor
       * no rule gives a user is answered OK without a limit (as Envoy's reference service does
       * for a descriptor without a configured limit) and counted.
       */
      rules: z.array(DescriptorRuleSchema).min(1).default(DEFAULT_DESCRIPTOR_RULES.map((r) => ({ ...r }))),
      /** Plan assumed when no rule sets one (unknown users get it too); must be a throttle.safeLimits plan. */
      defaultPlan: z.string().min(1).default("default"),
      /** Pool assumed when no rule sets one; absent = none (then `hitsAddend` applies). */
      defaultPool: z.string().min(1).optional(),
      /**
       * How hits_addend counts: "requests" (Envoy's meaning: the request adds hits_addend hits,
       * unset = 1) or "tokens" (LLM pools: the request counts 1 request and hits_addend tokens,
       * unset = 0 tokens). A descriptor's own hits_addend replaces the request's.
       */
      hitsAddend: z.enum(["requests", "tokens"]).default("requests"),
      /** Per-pool override of `hitsAddend` (e.g. { chat: "tokens" }). Default {}. */
      poolHitsAddend: z.record(z.string().min(1), z.enum(["requests", "tokens"])).default({}),
      /** Most descriptors one request may carry (more is INVALID_ARGUMENT). */
      maxDescriptors: int().min(1).max(1024).default(64),
    })
    .prefault({}),
  /** Rate-limit headers returned in response_headers_to_add: IETF RateLimit/RateLimit-Policy, X-RateLimit-*, both, or none. */
  headerStyle: z.enum(["ietf", "x-ratelimit", "both", "none"]).default("ietf"),
  /** ShouldRateLimit calls in flight above which new calls are refused with RESOURCE_EXHAUSTED (not queued). */
  maxConcurrentRequests: int().min(1).max(1_000_000).default(1024),
  /** On shutdown, time health reports NOT_SERVING while calls are still served (lets Envoy and Kubernetes stop sending), ms. */
  drainDelayMs: int().min(0).max(300_000).default(2000),
  /** On shutdown, time in-flight calls get to finish before they are cancelled, ms. */
  shutdownGraceMs: int().min(0).max(300_000).default(10_000),
  /**
   * The fixed-window limiter `foresight rls` serves with until the throttle component's client
   * is wired: one counter per user per window, as Envoy's reference ratelimit service counts.
   */
  fixedWindow: z
    .strictObject({
      /** Window length, ms (windows start at multiples of it since the epoch). */
      windowMs: int().min(1).max(86_400_000).default(1000),
      /** Limits per plan; a plan not listed gets throttle.safeLimits scaled to the window. Default {}. */
      plans: z.record(z.string().min(1), FixedWindowPlanSchema).default({}),
    })
    .prefault({}),
});

const HttpSchema = z.strictObject({
  /** Address the HTTP server (metrics, health) binds. */
  host: z.string().min(1).default(DEFAULT_HTTP_HOST),
  /** Port of /metrics and /healthz (0 = disabled). */
  metricsPort: int().min(0).max(65_535).default(DEFAULT_HTTP_PORT),
});

const LogSchema = z.strictObject({
  /** pino log level. */
  level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default(DEFAULT_LOG_LEVEL),
});

// ---------------------------------------------------------------------------------------------

/** The whole configuration. Parse `{}` to get every default. */
export const ForesightConfigSchema = z
  .strictObject({
    engine: EngineSchema.prefault({}),
    schedule: ScheduleSchema.prefault({}),
    pools: PoolsSchema.default([]),
    cluster: ClusterSchema.prefault({}),
    throttle: ThrottleSchema.prefault({}),
    nats: NatsSchema.prefault({}),
    envoy: EnvoySchema.prefault({}),
    http: HttpSchema.prefault({}),
    log: LogSchema.prefault({}),
  })
  .superRefine((c, ctx) => {
    // Cross-section rules: each names the field a user would change.
    if (!(c.envoy.descriptors.defaultPlan in c.throttle.safeLimits)) {
      ctx.addIssue({
        code: "custom",
        path: ["envoy", "descriptors", "defaultPlan"],
        message: `plan "${c.envoy.descriptors.defaultPlan}" has no entry in throttle.safeLimits`,
      });
    }
    const minTotal = c.pools.reduce((s, p) => s + p.minReplicas, 0);
    if (minTotal > c.cluster.maxReplicasTotal) {
      ctx.addIssue({
        code: "custom",
        path: ["cluster", "maxReplicasTotal"],
        message: `must be >= the sum of pools' minReplicas (${minTotal})`,
      });
    }
  });

/** The validated configuration with every default filled in. */
export type ForesightConfig = z.infer<typeof ForesightConfigSchema>;
/** What a user writes: every field optional where a default exists. */
export type ForesightConfigInput = z.input<typeof ForesightConfigSchema>;
/** One pool of the validated configuration. */
export type PoolConfig = ForesightConfig["pools"][number];

/** Every default, as the schema produces them from an empty document. */
export const DEFAULT_CONFIG: ForesightConfig = Object.freeze(ForesightConfigSchema.parse({})) as ForesightConfig;

/** How a change to a path takes effect. */
export type ConfigApplyMode = "live" | "restart";

/**
 * How changes take effect, by path prefix (longest prefix wins). "live": every running component
 * that reads the path applies it on its next tick/request; "restart": memory layout, connections
 * or stream topology depend on it, so it applies after a restart (the watcher reports such
 * changes, and `foresight serve` / `foresight allocate` log them as restartRequired).
 * Who follows what: the processor (`serve`) the engine settings, schedule, log, and the pools'
 * names and match rules (its demand partials); the allocator (`allocate`) pools, cluster,
 * throttle (its grant service restarts with them), engine.upperQuantile / horizon and log.
 * For the allocator, engine.capacityUsers (its grant slots), schedule.leaseTtlMs, nats and http
 * need a restart, as below.
 */
export const CONFIG_APPLY_MODES: Readonly<Record<string, ConfigApplyMode>> = Object.freeze({
  engine: "live",
  "engine.bucketWidthMs": "restart",
  "engine.capacityUsers": "restart",
  "engine.seasonPoints": "restart",
  "engine.allowedLatenessMs": "restart",
  "engine.forecastModel": "restart",
  "engine.lstm": "restart",
  "engine.lstm.modelVersion": "live",
  "engine.lstm.minCountPerBucket": "live",
  "engine.lstm.retrain": "live",
  "engine.ingressCapacity": "restart",
  "engine.tickThreads": "restart",
  "engine.countsCapacity": "restart",
  schedule: "live",
  "schedule.leaseTtlMs": "restart",
  // processor (partials' pools) and allocator (policy, targets, grants' pools): all of it live.
  pools: "live",
  // allocator: the budget of the next decision.
  cluster: "live",
  // allocator (grant service restarted with it) and the gateways' clients.
  throttle: "live",
  nats: "restart",
  envoy: "live",
  "envoy.grpcPort": "restart",
  "envoy.host": "restart",
  "envoy.fixedWindow": "restart",
  "envoy.drainDelayMs": "restart",
  "envoy.shutdownGraceMs": "restart",
  http: "restart",
  log: "live",
});

/** The apply mode of a dotted path (e.g. "pools.0.mode" -> "live"); unknown paths need a restart. */
export function applyModeOf(path: string): ConfigApplyMode {
  const parts = path.split(".");
  for (let n = parts.length; n > 0; n--) {
    const mode = CONFIG_APPLY_MODES[parts.slice(0, n).join(".")];
    if (mode) return mode;
  }
  return "restart";
}
