// The run report of `foresight start`: what happened in the live run, as JSON (every counter of the
// summary, gateway latency percentiles, and per pool over time the observed rate, the forecast and
// its upper bound, the replicas Foresight chose against a reactive HPA's, refusals and coverage)
// and as one self-contained HTML page drawn with the replay report's building blocks.
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type * as hdr from "hdr-histogram-js";
import { esc, htmlPage, htmlTable, svgChart, type Series } from "../report/index.ts";
import type { RunTimeline } from "./pools.ts";
import { loadRows, poolRows, POOL_TABLE_NOTE, runHeading } from "./summary.ts";
import type { StartSummary } from "./system.ts";

/** Version of the run report's JSON. */
export const START_REPORT_VERSION = 1;
/** File names inside the report directory. */
export const REPORT_HTML = "report.html";
export const REPORT_JSON = "report.json";

/** Latency percentiles of answered requests, from planned send time, ms. */
export interface LatencyPercentiles {
  /** Answered requests measured. */
  count: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

/** The JSON file. */
export interface StartReport {
  v: typeof START_REPORT_VERSION;
  /** The command line that ran. */
  command: string;
  /** When the report was written, ISO 8601. */
  writtenAt: string;
  /** Every counter of the printed summary (the tables' values, unrounded). */
  summary: StartSummary;
  /** Requests/s one replica of each pool serves at full utilization (capacity = replicas × this). */
  requestsPerSecPerReplica: Record<string, number>;
  /** Gateway latency, all requests and per pool. */
  latency: { overall: LatencyPercentiles; byPool: Record<string, LatencyPercentiles> };
  /** Per pool over time. */
  timeline: RunTimeline;
}

/** The report's inputs besides the summary. */
export interface ReportInput {
  command: string;
  summary: StartSummary;
  requestsPerSecPerReplica: Map<string, number>;
  latencyUs: hdr.Histogram;
  latencyUsByPool: Map<string, hdr.Histogram>;
  timeline: RunTimeline;
}

/** Percentiles of an hdr histogram of µs, in ms. */
export function percentilesMs(h: hdr.Histogram): LatencyPercentiles {
  // A percentile is its bucket's highest equivalent value, which can lie a little above the exact
  // maximum; capped so that p99.9 <= max reads as it should.
  const at = (p: number) => Math.min(h.getValueAtPercentile(p), h.maxValue) / 1000;
  return { count: h.totalCount, p50Ms: at(50), p90Ms: at(90), p99Ms: at(99), p999Ms: at(99.9), maxMs: h.maxValue / 1000 };
}

/** Assembles the JSON report. */
export function buildReport(i: ReportInput): StartReport {
  return {
    v: START_REPORT_VERSION,
    command: i.command,
    writtenAt: new Date().toISOString(),
    summary: i.summary,
    requestsPerSecPerReplica: Object.fromEntries(i.requestsPerSecPerReplica),
    latency: { overall: percentilesMs(i.latencyUs), byPool: Object.fromEntries([...i.latencyUsByPool].map(([p, h]) => [p, percentilesMs(h)])) },
    timeline: i.timeline,
  };
}

const COLORS = { demand: "#000", forecast: "#1f77b4", upper: "#7fb2d9", capacity: "#2ca02c", throttled: "#d62728", decided: "#1f77b4", predictive: "#9467bd", reactive: "#d62728" };

function poolCharts(r: StartReport, pool: string): string {
  const s = r.timeline.pools[pool];
  const xs = r.timeline.timeSec;
  const perReplica = r.requestsPerSecPerReplica[pool] ?? 0;
  const rates: Series[] = [
    { name: "observed rate", color: COLORS.demand, xs, ys: s.demandPerSec, width: 1 },
    { name: "forecast", color: COLORS.forecast, xs, ys: s.forecastPerSec },
    { name: "upper bound", color: COLORS.upper, xs, ys: s.upperPerSec, dash: true },
    { name: "capacity (Foresight)", color: COLORS.capacity, xs, ys: s.replicasAllocated.map((x) => x * perReplica) },
    { name: "refused", color: COLORS.throttled, xs, ys: s.throttledPerSec, width: 1 },
  ];
  const replicas: Series[] = [
    { name: "Foresight applied", color: COLORS.capacity, xs, ys: s.replicasAllocated, width: 2 },
    { name: "Foresight decided", color: COLORS.decided, xs, ys: s.replicasDecided },
    { name: "predictive half", color: COLORS.predictive, xs, ys: s.replicasPredictive, dash: true },
    { name: "reactive HPA", color: COLORS.reactive, xs, ys: s.replicasReactive },
  ];
  const coverage: Series[] = [{ name: "within upper bound", color: COLORS.forecast, xs, ys: s.coverage.map((c) => c * 100) }];
  const x = { xLabel: "seconds into the load", xFmt: (v: number) => v.toFixed(0) };
  return [
    `<h3>${esc(pool)}</h3>`,
    svgChart({ title: `${pool}: requests/s`, yLabel: "requests/s", yMin: 0, yFmt: (v) => v.toFixed(1), series: rates, ...x }),
    svgChart({ title: `${pool}: replicas, Foresight vs a reactive HPA`, yLabel: "replicas", yMin: 0, height: 280, series: replicas, ...x }),
    svgChart({ title: `${pool}: upper-bound coverage so far`, yLabel: "% of user-ticks", yMin: 0, height: 220, yFmt: (v) => v.toFixed(0), series: coverage, ...x }),
  ].join("\n");
}

const LATENCY_HEAD = ["requests", "answered", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"];
const latencyCells = (name: string, l: LatencyPercentiles): string[] => [name, l.count.toLocaleString("en-US"), ...[l.p50Ms, l.p90Ms, l.p99Ms, l.p999Ms, l.maxMs].map((v) => v.toFixed(2))];

/** The self-contained HTML page. */
export function renderStartHtml(r: StartReport): string {
  const s = r.summary;
  const [title, trace] = runHeading(s);
  const [loadHead, ...load] = loadRows(s);
  const [poolHead, ...pools] = poolRows(s);
  const refusals = s.pools.map((p) => [p.pool, p.requests.toLocaleString("en-US"), p.throttled.toLocaleString("en-US"), `${((p.requests ? p.throttled / p.requests : 0) * 100).toFixed(2)} %`, `${(p.coverage * 100).toFixed(1)} %`]);
  return htmlPage(
    "Foresight run",
    `<h1>Foresight run: the live system on real traffic</h1>
<p>${esc(title)}; ${esc(trace)}.</p>
<p>Command: <code>${esc(r.command)}</code>; written ${esc(r.writtenAt)}. Kubernetes: ${esc(s.allocator.target)}, pools in mode <code>${esc(s.allocator.mode)}</code>.</p>
<h2>Summary</h2>
${htmlTable(loadHead, load)}
${htmlTable(poolHead, pools)}
<p>${esc(POOL_TABLE_NOTE)}</p>
<h2>Refusals and coverage per pool</h2>
${htmlTable(["pool", "requests answered", "refused", "refused share", "upper-bound coverage"], refusals)}
<h2>Gateway latency (from planned send; hdr-histogram)</h2>
${htmlTable(LATENCY_HEAD, [latencyCells("all", r.latency.overall), ...Object.entries(r.latency.byPool).map(([p, l]) => latencyCells(p, l))])}
<h2>Pools over time</h2>
<p>Observed rate is what the gateway answered; forecast and upper bound are the allocator's for the pool; Foresight's replicas are max(predictive, reactive HPA); the reactive HPA line is what a Kubernetes HPA v2 alone would have chosen from the same load.</p>
${Object.keys(r.timeline.pools).map((p) => poolCharts(r, p)).join("\n")}`,
  );
}

/** Writes report.html and report.json into `dir` (created if missing); returns their absolute paths. */
export function writeReport(dir: string, r: StartReport): { dir: string; htmlPath: string; jsonPath: string } {
  const abs = resolve(dir);
  mkdirSync(abs, { recursive: true });
  const htmlPath = join(abs, REPORT_HTML);
  const jsonPath = join(abs, REPORT_JSON);
  writeFileSync(jsonPath, JSON.stringify(r, null, 1) + "\n");
  writeFileSync(htmlPath, renderStartHtml(r));
  return { dir: abs, htmlPath, jsonPath };
}
