// `foresight start` (`npm start`): the whole system on this machine on real ServeGen traffic.
import type { Command } from "commander";
import { DEFAULT_TOKENS_PATH, DEFAULT_TRACE_PATH } from "../../forecast/trace.ts";
import type { StartOptions } from "../../start/system.ts";
import { START_MODES, type StartMode } from "../../start/demo.ts";

/** A flag value that is not what it should be. */
export class StartOptionError extends Error {
  override name = "StartOptionError";
}

function num(name: string, v: string, min: number): number {
  const x = Number(v);
  if (!Number.isFinite(x) || x < min) throw new StartOptionError(`--${name} must be a number >= ${min}, got ${JSON.stringify(v)}`);
  return x;
}

interface Flags {
  trace: string;
  tokens: string;
  models: string;
  clients: string;
  day: string;
  hour: string;
  speedup: string;
  duration: string;
  maxRate: string;
  seed: string;
  port: string;
  host: string;
  partitions: string;
  killProcessorAt?: string;
  reportDir: string;
  /** False with `--no-report`. */
  report: boolean;
  kubeconfig?: string;
  context?: string;
  mode?: string;
  namespace: string;
}

/** `--mode`, checked; `--context` without `--kubeconfig` is a mistake worth saying. */
function startMode(f: Flags): StartMode | undefined {
  if (f.context !== undefined && f.kubeconfig === undefined) throw new StartOptionError("--context needs --kubeconfig");
  if (f.mode === undefined) return undefined;
  if (!(START_MODES as readonly string[]).includes(f.mode)) throw new StartOptionError(`--mode must be one of ${START_MODES.join(", ")}, got ${JSON.stringify(f.mode)}`);
  return f.mode as StartMode;
}

/** Registers `foresight start`. */
export function register(program: Command): void {
  program
    .command("start")
    .description("Run the whole system on real ServeGen traffic: nats-server, processor, gateway with throttling, allocator, live dashboard, load driver; prints a summary.")
    .option("--trace <path>", "per-client rate trace", process.env.FORESIGHT_TRACE ?? DEFAULT_TRACE_PATH)
    .option("--tokens <path>", "per-client token statistics", process.env.FORESIGHT_TOKENS ?? DEFAULT_TOKENS_PATH)
    .option("--models <list>", "models replayed, one pool each", "m-large,m-mid,m-small")
    .option("--clients <n>", "busiest clients per model", "15")
    .option("--day <d>", "trace day the replay starts on (days 0-6 are history)", "7")
    .option("--hour <h>", "hour of that day", "9")
    .option("--speedup <x>", "trace seconds per wall second", "60")
    .option("--duration <s>", "wall seconds of load", "150")
    .option("--max-rate <r>", "cap on offered requests per wall second (the trace is thinned above it)", "300")
    .option("--seed <n>", "seed of the load plan", "1")
    .option("--port <n>", "dashboard port (0 = any free port)", "8090")
    .option("--host <addr>", "dashboard bind address", "127.0.0.1")
    .option("--partitions <n>", "telemetry partitions", "2")
    .option("--kill-processor-at <s>", "fault demo: SIGKILL the processor this many seconds into the load")
    .option("--report-dir <dir>", "directory the run report (report.html, report.json) is written to at the end", "foresight-run")
    .option("--no-report", "write no run report")
    .option("--kubeconfig <file>", "act on the cluster of this kubeconfig instead of the in-process Kubernetes API test server; each pool needs a Deployment <namespace>/<model>. $KUBECONFIG alone is never used, so a demo never reaches a cluster unasked")
    .option("--context <name>", "kubeconfig context (with --kubeconfig)")
    .option("--mode <shadow|scale>", "what the allocator does with the workloads: shadow computes decisions and records them as Events without scaling; scale patches replicas (default: shadow with --kubeconfig, scale on the test server)")
    .option("--namespace <ns>", "namespace of the pools' Deployments", "llm")
    .addHelpText(
      "after",
      "\nA real cluster: npm start -- --kubeconfig ~/.kube/config [--context C] [--namespace llm] [--mode scale]\n" +
        "runs everything as usual but the allocator reads (shadow, the default) or scales (--mode scale) the\n" +
        "Deployments <namespace>/<model> of that cluster. The run report goes to --report-dir (default ./foresight-run).",
    )
    .action(async (f: Flags) => {
      const abort = new AbortController();
      const onSig = () => {
        if (abort.signal.aborted) process.exit(130);
        process.stderr.write("\nstopping (Ctrl-C again to exit at once)…\n");
        abort.abort();
      };
      process.on("SIGINT", onSig);
      process.on("SIGTERM", onSig);
      // Loaded when the command runs: the system pulls in the allocator, the Kubernetes client and
      // the throttle, which every other command would otherwise pay for at start-up.
      const { runSystem } = await import("../../start/system.ts");
      const { formatSummary } = await import("../../start/summary.ts");
      const { PRECONDITION_EXIT_CODE, MissingDataError, NatsServerMissingError, PortInUseError, AlreadyRunningError, KubeconfigError, WorkloadMissingError, ClusterAccessError } = await import("../../start/preconditions.ts");
      try {
        const opts: StartOptions = {
          tracePath: f.trace,
          tokensPath: f.tokens,
          models: f.models.split(",").map((s) => s.trim()).filter(Boolean),
          clientsPerModel: num("clients", f.clients, 1),
          traceStartSec: num("day", f.day, 0) * 86_400 + num("hour", f.hour, 0) * 3600,
          speedup: num("speedup", f.speedup, 1),
          durationMs: num("duration", f.duration, 1) * 1000,
          maxRatePerSec: num("max-rate", f.maxRate, 1),
          seed: num("seed", f.seed, 0),
          port: num("port", f.port, 0),
          host: f.host,
          natsUrl: process.env.NATS_URL,
          bucketWidthMs: 5_000,
          tickIntervalMs: 5_000,
          partitions: num("partitions", f.partitions, 1),
          killProcessorAtMs: f.killProcessorAt === undefined ? undefined : num("kill-processor-at", f.killProcessorAt, 0) * 1000,
          out: process.stdout,
          lockFile: process.env.FORESIGHT_START_LOCK,
          signal: abort.signal,
          reportDir: f.report ? f.reportDir : undefined,
          command: `foresight start ${process.argv.slice(3).join(" ")}`.trim(),
          cluster: f.kubeconfig === undefined ? undefined : { kubeconfigPath: f.kubeconfig, context: f.context },
          mode: startMode(f),
          namespace: f.namespace,
        };
        const summary = await runSystem(opts);
        process.stdout.write(formatSummary(summary));
        process.exit(0);
      } catch (err) {
        const e = err as Error;
        if (e instanceof MissingDataError || e instanceof NatsServerMissingError || e instanceof PortInUseError || e instanceof AlreadyRunningError || e instanceof StartOptionError || e instanceof KubeconfigError || e instanceof WorkloadMissingError || e instanceof ClusterAccessError) {
          process.stderr.write(`foresight start: ${e.message}\n`);
          process.exit(PRECONDITION_EXIT_CODE);
        }
        throw err;
      }
    });
}
