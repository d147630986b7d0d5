// The `foresight` command line. Each subcommand lives in src/cli/commands/<name>.ts and exports
// `register(program)`; this file only wires them together.
import { Command } from "commander";
import { register as registerConfig } from "./commands/config.ts";
import { register as registerServe } from "./commands/serve.ts";
import { register as registerEval } from "./commands/eval.ts";
import { register as registerTrain } from "./commands/train.ts";
import { register as registerAllocate } from "./commands/allocate.ts";
import { register as registerRls } from "./commands/rls.ts";
import { register as registerReplay } from "./commands/replay.ts";
import { register as registerStart } from "./commands/start.ts";
import { register as registerModels } from "./commands/models.ts";

const program = new Command()
  .name("foresight")
  .description("Forecast per-user API request rates from NATS telemetry and allocate ahead of demand.")
  .version("0.1.0")
  .showHelpAfterError();

// Subcommands (one import and one register line each).
registerConfig(program);
registerServe(program);
registerEval(program);
registerTrain(program);
registerAllocate(program);
registerRls(program);
registerReplay(program);
registerStart(program);
registerModels(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const e = err as Error;
  process.stderr.write(`foresight: ${e?.name && e.name !== "Error" ? e.name + ": " : ""}${e?.message ?? String(err)}\n`);
  process.exit(1);
});
