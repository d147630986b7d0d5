// `foresight train`: pre-trains the shared LSTM-lite weights from a trace's training split.
import { InvalidArgumentError, type Command } from "commander";
import { DEFAULT_MIN_REQUESTS, DEFAULT_PRETRAIN_EPOCHS, DEFAULT_TRACE_PATH, DEFAULT_TRAIN_WINDOWS, runTrain } from "../../forecast/index.ts";

function posInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`"${v}" is not an integer >= 1`);
  return n;
}

export function register(program: Command): void {
  program
    .command("train")
    .description("Pre-train the shared LSTM-lite weights on the training split of a per-client rate trace")
    .requiredOption("--out <file>", "weights file to write (LSTL format, loadable by `eval --weights` and the engine)")
    .option("--data <csv.gz>", "trace with columns model,client_id,t_start_s,requests[,iat_cv,...]", DEFAULT_TRACE_PATH)
    .option("--train-windows <n>", "buckets of each client to train on", posInt, DEFAULT_TRAIN_WINDOWS)
    .option("--min-requests <n>", "least total requests of a client", posInt, DEFAULT_MIN_REQUESTS)
    .option("--epochs <n>", "passes over the data", posInt, DEFAULT_PRETRAIN_EPOCHS)
    .option("--seed <n>", "initialisation and shuffling seed", posInt, 1)
    .action(async (opts) => {
      const r = await runTrain({
        data: opts.data,
        out: opts.out,
        trainWindows: opts.trainWindows,
        minRequests: opts.minRequests,
        epochs: opts.epochs,
        seed: opts.seed,
        progress: (line) => process.stderr.write(line + "\n"),
      });
      process.stdout.write(`trained on ${r.clients} clients in ${(r.elapsedMs / 1000).toFixed(1)} s, final loss ${r.loss.toFixed(4)}; wrote ${r.bytes} bytes to ${opts.out}\n`);
    });
}
