// The JSON summary of a replay (what bench/results/replay.json holds): every figure of the
// tables, without the per-minute timelines.
import type { ReplayResult } from "./run.ts";

export function replaySummary(r: ReplayResult): Record<string, unknown> {
  return {
    params: r.params,
    wallSec: Math.round(r.wallSec * 10) / 10,
    targets: r.targets,
    overall: r.overall,
    perPool: r.perPool,
    pools: r.pools.map((p) => ({
      model: p.model,
      clients: p.clients,
      history: p.history,
      gapWindows: p.gapWindows,
      excludedHours: p.excludedHours,
      scoredHours: p.scoredHours,
      selection: {
        chosen: p.selection.chosen,
        rule: p.selection.rule,
        runs: p.selection.runs.map((x) => ({ name: x.name, family: x.family, setting: x.setting, slo: x.figures.served / (x.figures.requests || 1), replicaHours: x.figures.replicaSec / 3600 })),
      },
      missEpisodes: {
        hpa: { count: p.missEpisodes.hpa.length, largest: [...p.missEpisodes.hpa].sort((a, b) => b.dropped - a.dropped).slice(0, 20) },
        foresight: { count: p.missEpisodes.foresight.length, largest: [...p.missEpisodes.foresight].sort((a, b) => b.dropped - a.dropped).slice(0, 20) },
      },
      runs: p.runs,
    })),
  };
}
