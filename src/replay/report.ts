/**
 * The replay's report: plain-text tables for the terminal and one self-contained HTML file (tables
 * and charts as inline SVG, no script, no network).
 */
import type { Matched, ReplayResult, Row, Scope } from "./run.ts";
import { paretoEnvelope, type FrontierPoint } from "./metrics.ts";
import type { MissEpisode, PoolResult } from "./sim.ts";
import { esc, htmlPage, htmlTable, svgChart, type Series } from "../report/index.ts";

const pct = (v: number, d = 3) => (Number.isFinite(v) ? (v * 100).toFixed(d) : "–");
const num = (v: number, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : "–");

function textTable(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  ");
  return [line(head), w.map((n) => "-".repeat(n)).join("  "), ...rows.map(line)].join("\n");
}

const POLICY_HEAD = ["policy", "SLO %", "no-queue %", "replica-h", "over-prov h", "ups", "downs", "throttled %", "false thr. %", "NN damage %", "forecast > floor %"];
const policyCells = (r: Row): string[] => {
  const s = r.summary;
  const thr = r.family === "limiter" || r.family === "foresight+throttle";
  return [r.name, pct(s.slo), pct(s.noQueueSlo, 2), num(s.replicaHours), num(s.overProvReplicaHours), String(s.scaleUps), String(s.scaleDowns),
    thr ? pct(s.throttledShare) : "–", thr ? pct(s.falseThrottleShare) : "–", pct(s.nnDamage), pct(s.predictiveShare, 1)];
};

const MATCH_HEAD = ["SLO", "HPA replica-h", "Foresight replica-h", "oracle replica-h", "Foresight vs HPA", "HPA actions", "Foresight actions"];
const matchCells = (m: Matched): string[] => [
  pct(m.slo, 2), num(m.hpa.replicaHours) + (m.hpa.extrapolated ? "*" : ""), num(m.foresight.replicaHours) + (m.foresight.extrapolated ? "*" : ""),
  num(m.oracle.replicaHours) + (m.oracle.extrapolated ? "*" : ""), Number.isFinite(m.savingVsHpa) ? `${m.savingVsHpa >= 0 ? "−" : "+"}${pct(Math.abs(m.savingVsHpa), 1)} %` : "–",
  num(m.hpa.scalingActions, 0), num(m.foresight.scalingActions, 0),
];

const POOL_HEAD = ["pool", "clients", "median req/s", "R req/s", "peak req/s", "static peak / p99", "gap windows", "excluded h", "scored h", "chosen Foresight"];
const poolCells = (p: PoolResult): string[] => [
  p.model, String(p.clients), num(p.history.medianPerSec), num(p.history.replicaRatePerSec, 2), num(p.history.peakPerSec), `${p.history.staticPeakReplicas} / ${p.history.staticP99Replicas}`,
  String(p.gapWindows), num(p.excludedHours), num(p.scoredHours), `headroom ${p.selection.chosen.headroom}, q ${p.selection.chosen.quantile}, floor ${p.selection.chosen.floorTarget}`,
];

const EP_HEAD = ["pool", "start (day hh:mm:ss)", "duration s", "dropped", "requests", "client that stepped", "its step req/s"];
const clock = (sec: number) => {
  const d = Math.floor(sec / 86400);
  const r = sec % 86400;
  const hh = String(Math.floor(r / 3600)).padStart(2, "0");
  const mm = String(Math.floor((r % 3600) / 60)).padStart(2, "0");
  const ss = String(r % 60).padStart(2, "0");
  return `${d} ${hh}:${mm}:${ss}`;
};
const epCells = (pool: string, e: MissEpisode): string[] => [pool, clock(e.startSec), String(e.durationSec), num(e.dropped, 0), num(e.requests, 0), e.stepClient, num(e.stepPerSec)];

/** Top miss episodes (by dropped requests) over all pools. */
function topEpisodes(r: ReplayResult, which: "hpa" | "foresight", n: number): [string, MissEpisode][] {
  const all: [string, MissEpisode][] = [];
  for (const p of r.pools) for (const e of p.missEpisodes[which]) all.push([p.model, e]);
  return all.sort((a, b) => b[1].dropped - a[1].dropped).slice(0, n);
}

function episodeSummary(r: ReplayResult, which: "hpa" | "foresight"): string {
  let n = 0;
  let sec = 0;
  let dropped = 0;
  for (const p of r.pools) for (const e of p.missEpisodes[which]) (n++, (sec += e.durationSec), (dropped += e.dropped));
  return `${n} episodes, ${sec} s in all, ${Math.round(dropped)} requests dropped`;
}

function scopeText(s: Scope): string {
  return [
    `== ${s.name}: policies (scored days, gaps excluded)`,
    textTable(POLICY_HEAD, s.rows.map(policyCells)),
    "",
    `== ${s.name}: replica-hours each frontier needs at a matched SLO (interpolated; * = its cheapest point already exceeds it)`,
    textTable(MATCH_HEAD, s.matched.map(matchCells)),
  ].join("\n");
}

/** Everything the terminal prints. */
export function renderText(r: ReplayResult, o: { perPool?: boolean } = {}): string {
  const t = r.targets;
  const out = [
    "== pools",
    textTable(POOL_HEAD, r.pools.map(poolCells)),
    "",
    scopeText(r.overall),
    "",
    "== targets (overall)",
    textTable(["target", "measured", "met"], [
      [t.replicaSaving.target, `${pct(t.replicaSaving.value, 1)} %`, t.replicaSaving.met ? "yes" : "NO"],
      [t.scalingActions.target, `${num(t.scalingActions.foresight, 0)} vs ${num(t.scalingActions.hpa, 0)} (${num(t.scalingActions.ratio, 2)}x)`, t.scalingActions.met ? "yes" : "NO"],
      [t.falseThrottles.target, `${pct(t.falseThrottles.value)} %`, t.falseThrottles.met ? "yes" : "NO"],
      [t.noisyNeighbour.target, `${pct(t.noisyNeighbour.foresight)} % vs ${pct(t.noisyNeighbour.fixedWindow)} %`, t.noisyNeighbour.met ? "yes" : "NO"],
    ]),
    "",
    `== HPA-${r.params.hpaTarget.toFixed(1)} miss episodes: ${episodeSummary(r, "hpa")}; Foresight (chosen): ${episodeSummary(r, "foresight")}. Largest HPA ones:`,
    textTable(EP_HEAD, topEpisodes(r, "hpa", 10).map(([p, e]) => epCells(p, e))),
  ];
  if (o.perPool ?? true) for (const s of r.perPool) out.push("", scopeText(s));
  out.push("", `wall time ${num(r.wallSec)} s`);
  return out.join("\n");
}

// ---------------------------------------------------------------------------------------------
// HTML

/** SLO drawn as "nines": −log10(1 − SLO), so 99 % = 2, 99.9 % = 3. */
const nines = (slo: number) => -Math.log10(Math.max(1e-6, 1 - slo));
const fromNines = (v: number) => `${(100 * (1 - 10 ** -v)).toFixed(v > 3 ? 3 : 2)} %`;

function frontierChart(s: Scope): string {
  const fam = (pts: FrontierPoint[], name: string, color: string): Series[] => {
    const env = paretoEnvelope(pts);
    return [
      { name: `${name} (runs)`, color, xs: pts.map((p) => p.replicaHours), ys: pts.map((p) => nines(p.slo)), points: true, width: 0 },
      { name: `${name} frontier`, color, xs: env.map((p) => p.replicaHours), ys: env.map((p) => nines(p.slo)) },
    ];
  };
  return svgChart({
    title: `Frontier, ${s.name}: SLO (served within the max wait) vs replica-hours`,
    xLabel: "replica-hours (scored days)", yLabel: "SLO (nines scale)", yFmt: fromNines, xFmt: (v) => v.toFixed(0),
    series: [...fam(s.frontiers.hpa, "HPA", "#d62728"), ...fam(s.frontiers.foresight, "Foresight", "#1f77b4"), ...fam(s.frontiers.oracle, "oracle", "#2ca02c")],
  });
}

function timelineCharts(r: ReplayResult): string {
  const pool = r.pools.find((p) => p.timeline);
  if (!pool?.timeline) return "<p>No timeline recorded.</p>";
  const tl = pool.timeline;
  const mins = Array.from({ length: 1440 }, (_, i) => i / 60);
  const colors = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd"];
  const cap = Object.entries(tl.capacity).map(([name, ys], i) => ({ name: `${name} capacity`, color: colors[i % colors.length], xs: mins, ys, width: 1.5 }));
  const day = svgChart({
    title: `${tl.model}, day ${tl.day}: demand and ready capacity per minute`, xLabel: "hour of day", yLabel: "requests/s",
    xFmt: (v) => v.toFixed(0), yMin: 0,
    series: [
      { name: "demand, max second", color: "#bbb", xs: mins, ys: tl.demandMax, width: 1 },
      { name: "demand, mean", color: "#000", xs: mins, ys: tl.demandMean, width: 1.2 },
      ...cap,
    ],
  });
  const users = tl.users
    .map((u) =>
      svgChart({
        title: `${u.client}, day ${tl.day}: per-user throttle timeline`, xLabel: "hour of day", yLabel: "requests per minute", height: 260, yMin: 0,
        xFmt: (v) => v.toFixed(0),
        series: [
          { name: "arrivals", color: "#000", xs: mins, ys: u.arrivals, width: 1 },
          { name: "forecast upper", color: "#888", xs: mins, ys: u.upperPerMin, dash: true },
          { name: "refused: Foresight", color: "#1f77b4", xs: mins, ys: u.refusedForesight },
          { name: "refused: fixed window", color: "#d62728", xs: mins, ys: u.refusedFixedWindow },
        ],
      }),
    )
    .join("\n");
  return `${day}\n<h2>Per-user throttle timeline (users most refused on that day)</h2>\n${users}`;
}

function episodeChart(r: ReplayResult): string {
  const series: Series[] = [];
  const colors = ["#d62728", "#ff7f0e", "#8c564b"];
  r.pools.forEach((p, i) => {
    const e = p.missEpisodes.hpa;
    series.push({ name: `${p.model} HPA`, color: colors[i % 3], xs: e.map((x) => x.startSec / 86400), ys: e.map((x) => x.dropped), points: true, width: 0 });
    const f = p.missEpisodes.foresight;
    series.push({ name: `${p.model} Foresight`, color: ["#1f77b4", "#17becf", "#9467bd"][i % 3], xs: f.map((x) => x.startSec / 86400), ys: f.map((x) => x.dropped), points: true, width: 0 });
  });
  return svgChart({ title: "Miss episodes: requests dropped per episode over the scored days", xLabel: "day", yLabel: "dropped requests", series, xFmt: (v) => v.toFixed(1), yMin: 0 });
}

/** The self-contained HTML report. */
export function renderHtml(r: ReplayResult, o: { command: string }): string {
  const t = r.targets;
  const scope = (s: Scope) => `<h3>${esc(s.name)}</h3>${htmlTable(POLICY_HEAD, s.rows.map(policyCells))}<p>Matched SLO (interpolated along each frontier; * = its cheapest point already exceeds it):</p>${htmlTable(MATCH_HEAD, s.matched.map(matchCells))}`;
  const p = r.params;
  return htmlPage("Foresight replay", `<h1>Foresight replay: prediction vs reaction on real traffic</h1>
<p>Command: <code>${esc(o.command)}</code>; wall time ${num(r.wallSec)} s. Trace: ServeGen per-client 10-minute windows (Alibaba, Apache-2.0), models ${esc(r.pools.map((x) => x.model).join(", "))}; each model is one pool.</p>
<h2>Model</h2>
<ul>
<li>Days 0–${p.historyDays - 1} are history (engine warm-up, R, static levels, quotas; settings chosen on days ${p.historyDays - p.selectionDays}–${p.historyDays - 1}); days ${p.firstScoredDay}–${p.firstScoredDay + p.scoredDays - 1} are scored, after ${p.warmupSec} s of unscored warm-up.</li>
<li>Arrivals per second per client from each window's inter-arrival fit (scipy's Gamma/Weibull shape, scale rescaled so exactly the window's requests fall inside), seed ${p.seed}; above ${p.maxDrawsPerWindow} requests per client-window gaps are drawn in blocks (exact sums for Gamma, moment-matched for Weibull).</li>
<li>Gaps: windows with &lt; ${p.gapFraction * 100} % of the pool's median window volume, refilled from the nearest earlier non-gap day, run through, not scored.</li>
<li>Capacity: R = median per-second demand over the history / ${p.medianReplicas}; decisions every ${p.decisionSec} s; scale-ups ready after ${p.startDelaySec} s; scale-down immediate (pending first); every existing replica billed.</li>
<li>Service: fluid FIFO, ready replicas × R per second, a request waits at most ${p.maxWaitSec} s after its arrival second; SLO = share served in time; no-queue = demand above capacity in its own second lost.</li>
<li>Policies: static at the history's peak and p99 second; HPA v2 (src/allocator/hpa.ts, Kubernetes defaults) at ${p.hpaTargets.join(", ")}; fixed-window per-user limiter (quota = the user's history ${p.fixedWindowQuotaQuantile === 1 ? "peak" : `p${p.fixedWindowQuotaQuantile * 100}`} per ${p.fixedWindowSec} s) in front of HPA-${p.hpaTarget}; Foresight = real WASM engine ensemble forecasts + allocator + throttle at headroom ${p.foresightHeadrooms.join("/")} × quantile ${p.foresightQuantiles.join("/")} × reactive-floor target ${p.foresightFloorTargets.join("/")} (every other allocator and throttle setting: the config schema's default); oracle knowing the next ${p.oracleLookaheadSec} s, capacity × ${p.oracleFactors.join("/")}.</li>
</ul>
<h2>Targets (overall)</h2>
<ul>
<li class="${t.replicaSaving.met ? "met" : "miss"}">${esc(t.replicaSaving.target)}: ${pct(t.replicaSaving.value, 1)} % — ${t.replicaSaving.met ? "met" : "missed"}</li>
<li class="${t.scalingActions.met ? "met" : "miss"}">${esc(t.scalingActions.target)}: ${num(t.scalingActions.foresight, 0)} vs ${num(t.scalingActions.hpa, 0)} (${num(t.scalingActions.ratio, 2)}×) — ${t.scalingActions.met ? "met" : "missed"}</li>
<li class="${t.falseThrottles.met ? "met" : "miss"}">${esc(t.falseThrottles.target)}: ${pct(t.falseThrottles.value)} % — ${t.falseThrottles.met ? "met" : "missed"}</li>
<li class="${t.noisyNeighbour.met ? "met" : "miss"}">${esc(t.noisyNeighbour.target)}: ${pct(t.noisyNeighbour.foresight)} % vs ${pct(t.noisyNeighbour.fixedWindow)} % — ${t.noisyNeighbour.met ? "met" : "missed"}</li>
</ul>
<h2>Pools</h2>
${htmlTable(POOL_HEAD, r.pools.map(poolCells))}
<h2>Frontier</h2>
${frontierChart(r.overall)}
<h2>Tables</h2>
${scope(r.overall)}
${r.perPool.map(scope).join("\n")}
<h2>A day of one pool</h2>
${timelineCharts(r)}
<h2>Miss episodes</h2>
<p>HPA-${p.hpaTarget}: ${esc(episodeSummary(r, "hpa"))}. Foresight (chosen): ${esc(episodeSummary(r, "foresight"))}.</p>
${episodeChart(r)}
${htmlTable(EP_HEAD, topEpisodes(r, "hpa", 20).map(([pl, e]) => epCells(pl, e)))}`);
}
