// `foresight allocate`: registers the command; the work is in allocate-run.ts, imported when the
// command runs (client-node and the allocator are heavy to load for every other command).
import type { Command } from "commander";
import { DEFAULT_LEASE_TTL_MS } from "../../config/schema.ts";
import type { AllocateFlags } from "./allocate-run.ts";

/** Registers `foresight allocate`. */
export function register(program: Command): void {
  program
    .command("allocate")
    .description("Run the allocator: sum the processors' partial demand, decide per pool, patch Kubernetes by each pool's mode, and publish per-user grants (one leader).")
    .option("--config <file>", "config file (YAML or JSON)")
    .option("--servers <urls>", "NATS servers, comma-separated (overrides the config)")
    .option("--prefix <prefix>", "subject prefix (overrides nats.subjectPrefix)")
    .option("--partitions <n>", "number of partitions (overrides nats.partitions)")
    .option("--kubeconfig <file>", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)")
    .option("--context <name>", "kubeconfig context")
    .option("--sim", "start the Kubernetes API test server in-process, seeded with the pools' workloads (demo)", false)
    .option("--http-port <n>", "port of /metrics /healthz /readyz (0 = any free port; default: config http.metricsPort)")
    .option("--process-id <id>", "this process's id in the leader lease (default host-pid-random)")
    .option("--lease-ttl-ms <ms>", `leader lease TTL (default schedule.leaseTtlMs, ${DEFAULT_LEASE_TTL_MS})`)
    .option("--decision-interval-ms <ms>", "interval between decisions (default: the smallest pools[].decisionIntervalMs)")
    .option("--force-conflicts", "take fields owned by other field managers (server-side apply force); default: report the owner", false)
    .option("--log-level <level>", "log level (overrides log.level)")
    .option("--no-kv", "do not read the config KV bucket")
    .option("--no-grants", "do not run the grant service (default: the leader publishes per-user grants from the config's throttle section)")
    .action(async (flags: AllocateFlags) => (await import("./allocate-run.ts")).allocate(flags));
}
