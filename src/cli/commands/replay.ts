// `foresight replay`: replays the real ServeGen traffic through static provisioning, a reactive HPA,
// a fixed-window limiter, Foresight (engine + allocator + throttle) and an oracle; prints the
// tables and writes one self-contained HTML report (see docs/replay.md).
import { readFileSync, writeFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { tmpdir } from "node:os";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { InvalidArgumentError, type Command } from "commander";
import { SingleBar, Presets } from "cli-progress";
import { DEFAULT_TRACE_PATH } from "../../forecast/trace.ts";
import { DEFAULT_PARAMS, DEFAULT_POOLS, LIVE_MODULES, renderHtml, renderText, replayOnePool, replaySummary, runReplay, type PoolResult, type ReplayParams } from "../../replay/index.ts";

/** JSON with typed arrays as plain arrays (a pool's result crosses a process boundary). */
const toJson = (v: unknown) => JSON.stringify(v, (_k, x) => (ArrayBuffer.isView(x) ? Array.from(x as unknown as ArrayLike<number>) : x));

/**
 * Runs one pool in a child process (the same CLI with `--worker-out`), so pools use every core;
 * progress comes back as JSON lines on the child's stderr.
 */
function poolInChild(args: string[], model: string, timelineDay: number | undefined, dir: string, progress: (stage: string, done: number, total: number) => void): Promise<PoolResult> {
  const out = join(dir, `${model}.json`);
  const childArgs = [...process.execArgv, process.argv[1], "replay", ...args, "--pools", model, "--worker-out", out, "--no-progress"];
  if (timelineDay !== undefined) childArgs.push("--timeline-day", String(timelineDay));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, childArgs, { stdio: ["ignore", "ignore", "pipe"] });
    let errText = "";
    createInterface({ input: child.stderr! }).on("line", (line) => {
      if (line.startsWith("{\"progress\"")) {
        const m = JSON.parse(line).progress;
        progress(m.stage, m.done, m.total);
      } else errText += line + "\n";
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`replay of pool ${model} failed (exit ${code}): ${errText.trim()}`));
      resolve(JSON.parse(readFileSync(out, "utf8")) as PoolResult);
    });
  });
}

/** The CLI arguments a child repeats: everything but the ones the parent sets per child. */
function childArgs(argv: string[]): string[] {
  const drop = new Set(["--pools", "--worker-out", "--timeline-day", "--html", "--json", "--workers"]);
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [name] = a.split("=");
    if (drop.has(name)) {
      if (!a.includes("=")) i++;
      continue;
    }
    if (a === "--no-progress" || a === "--quick") continue;
    out.push(a);
  }
  return out;
}

const num = (name: string, ok: (n: number) => boolean, rule: string) => (v: string) => {
  const n = Number(v);
  if (!ok(n)) throw new InvalidArgumentError(`${name} "${v}" ${rule}`);
  return n;
};
const int0 = (name: string) => num(name, (n) => Number.isInteger(n) && n >= 0, "is not an integer >= 0");
const int1 = (name: string) => num(name, (n) => Number.isInteger(n) && n >= 1, "is not an integer >= 1");
const frac = (name: string) => num(name, (n) => n >= 0 && n <= 1, "is not in [0, 1]");
const list = (name: string) => (v: string) => {
  const out = v.split(",").map((s) => Number(s.trim()));
  if (out.length === 0 || out.some((n) => !Number.isFinite(n))) throw new InvalidArgumentError(`${name} "${v}" is not a comma list of numbers`);
  return out;
};

/** Options as commander parses them. */
interface Opts {
  data: string;
  pools: string;
  quick?: boolean;
  html: string;
  json?: string;
  seed: number;
  historyDays: number;
  firstScoredDay?: number;
  scoredDays?: number;
  warmupSec: number;
  selectionDays: number;
  medianReplicas: number;
  decisionSec: number;
  startDelaySec: number;
  maxWaitSec: number;
  gapFraction: number;
  maxDraws: number;
  hpaTargets: number[];
  hpaTarget: number;
  oracleLookaheadSec: number;
  oracleFactors: number[];
  headrooms: number[];
  quantiles: number[];
  floorTargets: number[];
  selectionSlo: number;
  fixedWindowSec: number;
  fixedWindowQuota: number;
  burstFactor: number;
  pressureWindowSec: number;
  engine: string;
  weights?: string;
  timelinePool?: string;
  timelineDay?: number;
  perPool: boolean;
  progress: boolean;
  workers: number;
  workerOut?: string;
}

export function register(program: Command): void {
  const d = DEFAULT_PARAMS;
  program
    .command("replay")
    .description("Replay real per-client traffic through static, HPA, fixed-window, Foresight and oracle policies; print tables, write an HTML report")
    .option("--data <csv.gz>", "ServeGen rate trace (model,client_id,t_start_s,requests,iat_cv,iat_dist,iat_shape,iat_scale)", DEFAULT_TRACE_PATH)
    .option("--pools <models>", "comma list of models, one pool each", DEFAULT_POOLS.join(","))
    .option("--quick", "one pool (the first of --pools, default m-large) and one scored day: the README/test run")
    .option("--html <file>", "HTML report to write", "replay-report.html")
    .option("--json <file>", "write the summary JSON (bench/env.ts format) here")
    .option("--seed <n>", "arrival streams' seed", int0("--seed"), d.seed)
    .option("--history-days <n>", "history days (engine warm-up, R, static levels, quotas, settings)", int1("--history-days"), d.historyDays)
    .option("--first-scored-day <n>", "first scored day (default: --history-days)", int1("--first-scored-day"))
    .option("--scored-days <n>", `scored days (default ${d.scoredDays}; 1 with --quick)`, int1("--scored-days"))
    .option("--warmup-sec <s>", "unscored warm-up before a scored span", int0("--warmup-sec"), d.warmupSec)
    .option("--selection-days <n>", "last history days on which settings are chosen", int1("--selection-days"), d.selectionDays)
    .option("--median-replicas <n>", "replicas at the history's median per-second demand (R = median / n)", num("--median-replicas", (n) => n > 0, "is not > 0"), d.medianReplicas)
    .option("--decision-sec <s>", "decision interval", int1("--decision-sec"), d.decisionSec)
    .option("--start-delay-sec <s>", "scale-up delay until a new replica serves", int0("--start-delay-sec"), d.startDelaySec)
    .option("--max-wait-sec <s>", "seconds a request may wait after its arrival second", int0("--max-wait-sec"), d.maxWaitSec)
    .option("--gap-fraction <f>", "a window below this fraction of the pool's median window is a recording gap", frac("--gap-fraction"), d.gapFraction)
    .option("--max-draws <n>", "most inter-arrival draws per client window (blocks beyond)", int1("--max-draws"), d.maxDrawsPerWindow)
    .option("--hpa-targets <list>", "HPA target utilizations traced", list("--hpa-targets"), d.hpaTargets)
    .option("--hpa-target <u>", "the HPA row (and the fixed-window limiter's HPA)", num("--hpa-target", (n) => n > 0 && n <= 1, "is not in (0, 1]"), d.hpaTarget)
    .option("--oracle-lookahead-sec <s>", "seconds of future demand the oracle knows", int1("--oracle-lookahead-sec"), d.oracleLookaheadSec)
    .option("--oracle-factors <list>", "oracle capacity multipliers traced", list("--oracle-factors"), d.oracleFactors)
    .option("--headrooms <list>", "Foresight headrooms traced", list("--headrooms"), d.foresightHeadrooms)
    .option("--quantiles <list>", "Foresight upper-bound quantiles traced", list("--quantiles"), d.foresightQuantiles)
    .option("--floor-targets <list>", "Foresight reactive-floor HPA targets traced", list("--floor-targets"), d.foresightFloorTargets)
    .option("--selection-slo <slo>", "settings: cheapest Foresight setting reaching this SLO on the selection days", frac("--selection-slo"), d.selectionSlo)
    .option("--fixed-window-sec <s>", "fixed-window limiter's window", int1("--fixed-window-sec"), d.fixedWindowSec)
    .option("--fixed-window-quota <q>", "per-user quota = this quantile of the user's per-window counts over the history (1 = peak)", frac("--fixed-window-quota"), d.fixedWindowQuotaQuantile)
    .option("--burst-factor <f>", "throttle bucket burst factor", num("--burst-factor", (n) => n >= 1, "is not >= 1"), d.burstFactor)
    .option("--pressure-window-sec <s>", "pool load for the throttle's pressure = mean arrivals over this many seconds", int1("--pressure-window-sec"), d.pressureWindowSec)
    .option("--engine <wasm|ts>", "engine implementation (the WASM release build, or its TypeScript reference)", d.engine)
    .option("--weights <file>", "LSTM-lite weights for the ensemble (default: built-in initialisation, as serve runs)")
    .option("--timeline-pool <model>", "pool of the report's day chart (default: the first pool)")
    .option("--timeline-day <n>", "day of the report's day chart (default: the first scored day)", int0("--timeline-day"))
    .option("--workers <n>", "pools replayed at once, each in its own process (1 = one after the other, in this process)", int1("--workers"), 3)
    .option("--worker-out <file>", "(internal) replay the single pool of --pools and write its result here")
    .option("--no-per-pool", "print the overall tables only")
    .option("--no-progress", "no progress bar")
    .action(async (opts: Opts) => {
      if (opts.engine !== "wasm" && opts.engine !== "ts") throw new InvalidArgumentError(`--engine must be wasm or ts, not "${opts.engine}"`);
      const pools = opts.pools.split(",").map((s) => s.trim()).filter(Boolean);
      const params: ReplayParams = {
        seed: opts.seed,
        historyDays: opts.historyDays,
        firstScoredDay: opts.firstScoredDay ?? opts.historyDays,
        scoredDays: opts.scoredDays ?? (opts.quick ? 1 : d.scoredDays),
        warmupSec: opts.warmupSec,
        selectionDays: opts.selectionDays,
        medianReplicas: opts.medianReplicas,
        decisionSec: opts.decisionSec,
        startDelaySec: opts.startDelaySec,
        maxWaitSec: opts.maxWaitSec,
        gapFraction: opts.gapFraction,
        maxDrawsPerWindow: opts.maxDraws,
        hpaTargets: opts.hpaTargets,
        hpaTarget: opts.hpaTarget,
        oracleLookaheadSec: opts.oracleLookaheadSec,
        oracleFactors: opts.oracleFactors,
        foresightHeadrooms: opts.headrooms,
        foresightQuantiles: opts.quantiles,
        foresightFloorTargets: opts.floorTargets,
        selectionSlo: opts.selectionSlo,
        fixedWindowSec: opts.fixedWindowSec,
        fixedWindowQuotaQuantile: opts.fixedWindowQuota,
        burstFactor: opts.burstFactor,
        pressureWindowSec: opts.pressureWindowSec,
        engine: opts.engine,
        lstmWeights: opts.weights ? new Uint8Array(readFileSync(opts.weights)) : undefined,
      };
      if (opts.workerOut) {
        // A child of a parallel run: one pool, its result as JSON, progress as JSON lines.
        const r = await replayOnePool(opts.data, pools[0], params, LIVE_MODULES, opts.timelineDay, (stage, done, total) =>
          process.stderr.write(JSON.stringify({ progress: { stage, done, total } }) + "\n"),
        );
        writeFileSync(opts.workerOut, toJson(r));
        return;
      }
      const command = `foresight replay ${process.argv.slice(3).join(" ")}`.trim();
      const usePools = opts.quick ? pools.slice(0, 1) : pools;
      const parallel = opts.workers > 1 && usePools.length > 1;
      const tmp = parallel ? mkdtempSync(join(tmpdir(), "foresight-replay-")) : "";
      const cliArgs = childArgs(process.argv.slice(3));
      // Children get the parent's effective scored days (--quick is not passed on).
      if (opts.quick && opts.scoredDays === undefined) cliArgs.push("--scored-days", String(params.scoredDays));
      const bar = opts.progress && process.stderr.isTTY
        ? new SingleBar({ format: "{pool} {stage} [{bar}] {percentage}% | {elapsed}s", stream: process.stderr, hideCursor: true }, Presets.shades_classic)
        : null;
      // Progress units: per pool, history + selection + scored seconds (engine passes are short).
      let started = false;
      const stagesPerPool = ["history", "engine", "selection", "scored"];
      const fraction = new Map<string, number>();
      const progress = (pool: string, stage: string, done: number, total: number) => {
        if (!bar) return;
        const si = stagesPerPool.indexOf(stage);
        fraction.set(pool, (si + (total > 0 ? done / total : 0)) / stagesPerPool.length);
        let sum = 0;
        for (const v of fraction.values()) sum += v;
        if (!started) {
          bar.start(1000 * usePools.length, 0, { pool, stage });
          started = true;
        }
        bar.update(Math.round(1000 * sum), { pool, stage });
      };
      let running = 0;
      const queue: (() => void)[] = [];
      const slot = async <T>(f: () => Promise<T>): Promise<T> => {
        if (running >= opts.workers) await new Promise<void>((res) => queue.push(res));
        running++;
        try {
          return await f();
        } finally {
          running--;
          queue.shift()?.();
        }
      };
      const r = await runReplay({
        data: opts.data,
        pools: usePools,
        params,
        modules: LIVE_MODULES,
        timelinePool: opts.timelinePool,
        timelineDay: opts.timelineDay,
        progress,
        runPool: parallel ? (model, day) => slot(() => poolInChild(cliArgs, model, day, tmp, (st, dn, tt) => progress(model, st, dn, tt))) : undefined,
      }).finally(() => tmp && rmSync(tmp, { recursive: true, force: true }));
      bar?.stop();
      process.stdout.write(renderText(r, { perPool: opts.perPool }) + "\n");
      mkdirSync(dirname(opts.html), { recursive: true });
      writeFileSync(opts.html, renderHtml(r, { command }));
      process.stdout.write(`wrote ${opts.html}\n`);
      if (opts.json) {
        const { writeBenchJson } = await import("../../../bench/env.ts");
        writeBenchJson(opts.json, command, replaySummary(r));
        process.stdout.write(`wrote ${opts.json}\n`);
      }
    });
}
