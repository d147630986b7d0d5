// How the long-running commands (serve, allocate, rls) wait to be stopped: the first SIGTERM or
// SIGINT starts an ordered shutdown; a second one exits at once (an operator who insists).

/** Minimal logger (pino-compatible). */
interface SignalLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** Resolves with the first SIGTERM/SIGINT; a second signal exits the process with code 1. */
export function waitForStopSignal(log: SignalLog): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      if (++signals > 1) {
        log.warn({ signal: sig }, "second signal: exiting without a clean shutdown");
        process.exit(1);
      }
      log.info({ signal: sig }, "shutting down");
      resolve(sig);
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
}
