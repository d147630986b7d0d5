/**
 * `foresight replay` end to end: load the pools, replay each, sum the pools, trace the frontiers,
 * read them at the matched SLOs and check the targets.
 */
import { ReplayOptionError } from "./errors.ts";
import { addFigures, atSlo, emptyFigures, summarize, type FrontierPoint, type PolicyFigures, type PolicySummary } from "./metrics.ts";
import type { PolicyModules } from "./ports.ts";
import { checkParams, replayPool, sameSetting, type PoolProgress, type PoolResult, type ReplayParams } from "./sim.ts";
import { loadPoolTraces, refillGaps } from "./traffic.ts";

/** Default pools: the three language models of the ServeGen trace. */
export const DEFAULT_POOLS = ["m-large", "m-mid", "m-small"];
/** SLOs at which the frontiers are compared. */
export const MATCHED_SLOS = [0.995, 0.999, 0.9995];

export interface ReplayRunOptions {
  data: string;
  pools: string[];
  params: ReplayParams;
  modules: PolicyModules;
  /** Pool and day of the report's timeline (default: the first pool, the first scored day). */
  timelinePool?: string;
  timelineDay?: number;
  progress?: (pool: string, stage: string, done: number, total: number) => void;
  /**
   * Runs one pool elsewhere (e.g. a child process, so pools use every core); default: in this
   * process, one pool after the other. Pools then run concurrently.
   */
  runPool?: (model: string, timelineDay: number | undefined) => Promise<PoolResult>;
}

/** One pool of the replay, in this process: load, refill gaps, replay. */
export async function replayOnePool(data: string, model: string, params: ReplayParams, modules: PolicyModules, timelineDay: number | undefined, progress?: PoolProgress): Promise<PoolResult> {
  checkParams(params);
  const [trace] = await loadPoolTraces(data, [model]);
  refillGaps(trace, params.gapFraction);
  return replayPool(trace, params, modules, { timelineDay, progress });
}

/** One row of a table. */
export interface Row {
  name: string;
  family: string;
  setting: Record<string, number>;
  summary: PolicySummary;
}

/** Matched-SLO figures of one SLO. */
export interface Matched {
  slo: number;
  hpa: ReturnType<typeof atSlo>;
  foresight: ReturnType<typeof atSlo>;
  oracle: ReturnType<typeof atSlo>;
  /** 1 − foresight / hpa replica-hours. */
  savingVsHpa: number;
}

export interface Scope {
  /** "overall" or the pool's model. */
  name: string;
  /** Main rows (chosen Foresight setting, HPA at its target, limiter, statics, oracle points). */
  rows: Row[];
  /** Every frontier point per family. */
  frontiers: { hpa: FrontierPoint[]; foresight: FrontierPoint[]; oracle: FrontierPoint[] };
  matched: Matched[];
}

export interface Targets {
  replicaSaving: { target: string; value: number; met: boolean };
  scalingActions: { target: string; foresight: number; hpa: number; ratio: number; met: boolean };
  falseThrottles: { target: string; value: number; met: boolean };
  noisyNeighbour: { target: string; foresight: number; fixedWindow: number; met: boolean };
}

export interface ReplayResult {
  params: Omit<ReplayParams, "lstmWeights">;
  pools: PoolResult[];
  overall: Scope;
  perPool: Scope[];
  targets: Targets;
  wallSec: number;
}

const toPoint = (name: string, f: PolicyFigures): FrontierPoint => {
  const s = summarize(f);
  return { label: name, slo: s.slo, replicaHours: s.replicaHours, scalingActions: s.scaleUps + s.scaleDowns };
};

/** Rows and frontiers of one scope from runs keyed by name (figures summed over the scope's pools). */
function buildScope(name: string, pools: PoolResult[], p: ReplayParams): Scope {
  const byName = new Map<string, { family: string; setting: Record<string, number>; f: PolicyFigures }>();
  const add = (key: string, family: string, setting: Record<string, number>, f: PolicyFigures) => {
    const e = byName.get(key);
    if (e) e.f = addFigures(e.f, f);
    else byName.set(key, { family, setting, f: addFigures(emptyFigures(), f) });
  };
  for (const pool of pools) {
    const chosen = pool.selection.chosen;
    for (const r of pool.runs) {
      add(r.name, r.family, r.setting, r.figures);
      // The chosen setting may differ per pool: "foresight" is each pool's choice, summed.
      if (r.family === "foresight" && sameSetting(r.setting, chosen)) add("foresight (chosen)", "foresight-chosen", r.setting, r.figures);
      if (r.family === "foresight+throttle") add("foresight (chosen) +throttle", "foresight+throttle", r.setting, r.figures);
    }
  }
  const rowNames = ["static-peak", "static-p99", `hpa-${p.hpaTarget.toFixed(1)}`, `hpa-${p.hpaTarget.toFixed(1)} +fixed-window`, "foresight (chosen)", "foresight (chosen) +throttle"];
  const rows: Row[] = [];
  for (const n of rowNames) {
    const e = byName.get(n);
    if (e) rows.push({ name: pools.length === 1 && n.startsWith("foresight (chosen)") ? n.replace("(chosen)", `h${e.setting.headroom} q${e.setting.quantile} f${e.setting.floorTarget}`) : n, family: e.family, setting: e.setting, summary: summarize(e.f) });
  }
  for (const [n, e] of byName) if (e.family === "oracle") rows.push({ name: n, family: e.family, setting: e.setting, summary: summarize(e.f) });
  const fam = (f: string) => [...byName].filter(([, e]) => e.family === f).map(([n, e]) => toPoint(n, e.f));
  const frontiers = { hpa: fam("hpa"), foresight: fam("foresight"), oracle: fam("oracle") };
  const matched = MATCHED_SLOS.map((slo) => {
    const hpa = atSlo(frontiers.hpa, slo);
    const foresight = atSlo(frontiers.foresight, slo);
    const oracle = atSlo(frontiers.oracle, slo);
    return { slo, hpa, foresight, oracle, savingVsHpa: 1 - foresight.replicaHours / hpa.replicaHours };
  });
  return { name, rows, frontiers, matched };
}

function evaluateTargets(overall: Scope): Targets {
  const m = overall.matched.find((x) => x.slo === 0.999)!;
  const ft = overall.rows.find((r) => r.family === "foresight+throttle")?.summary;
  const fw = overall.rows.find((r) => r.family === "limiter")?.summary;
  const ratio = m.foresight.scalingActions / m.hpa.scalingActions;
  return {
    replicaSaving: { target: ">= 12 % fewer replica-hours than the HPA frontier at 99.9 % SLO", value: m.savingVsHpa, met: m.savingVsHpa >= 0.12 },
    scalingActions: { target: "scaling actions <= 2x the HPA's at that point", foresight: m.foresight.scalingActions, hpa: m.hpa.scalingActions, ratio, met: ratio <= 2 },
    falseThrottles: { target: "false throttles < 0.1 % of requests", value: ft?.falseThrottleShare ?? NaN, met: (ft?.falseThrottleShare ?? Infinity) < 0.001 },
    noisyNeighbour: {
      target: "noisy-neighbour damage lower than the fixed-window limiter's",
      foresight: ft?.nnDamage ?? NaN,
      fixedWindow: fw?.nnDamage ?? NaN,
      met: (ft?.nnDamage ?? Infinity) < (fw?.nnDamage ?? -Infinity),
    },
  };
}

/** Runs the whole replay. */
export async function runReplay(o: ReplayRunOptions): Promise<ReplayResult> {
  checkParams(o.params);
  if (o.pools.length === 0) throw new ReplayOptionError("pools: at least one pool (model) is required");
  const t0 = performance.now();
  const tlPool = o.timelinePool ?? o.pools[0];
  const tlDay = o.timelineDay ?? o.params.firstScoredDay;
  let results: PoolResult[];
  if (o.runPool) {
    results = await Promise.all(o.pools.map((m) => o.runPool!(m, m === tlPool ? tlDay : undefined)));
  } else {
    const traces = await loadPoolTraces(o.data, o.pools);
    results = [];
    for (const trace of traces) {
      refillGaps(trace, o.params.gapFraction);
      const progress: PoolProgress = (stage, done, total) => o.progress?.(trace.model, stage, done, total);
      results.push(await replayPool(trace, o.params, o.modules, { timelineDay: trace.model === tlPool ? tlDay : undefined, progress }));
    }
  }
  const overall = buildScope("overall", results, o.params);
  const perPool = results.map((r) => buildScope(r.model, [r], o.params));
  const { lstmWeights: _w, ...params } = o.params;
  return { params, pools: results, overall, perPool, targets: evaluateTargets(overall), wallSec: (performance.now() - t0) / 1000 };
}
