// Structured logs: pino, one JSON object per line on stdout (or a given stream), level from config.
import { pino, type Logger, type DestinationStream } from "pino";

export type { Logger } from "pino";

/** Log levels accepted in the config and on the command line. */
export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

/** Default log level. */
export const DEFAULT_LOG_LEVEL: LogLevel = "info";

export interface LoggerOptions {
  /** Minimum level written. Default {@link DEFAULT_LOG_LEVEL}. */
  level?: LogLevel;
  /** Component name put on every line as `component`. Default "foresight". */
  name?: string;
  /** Where lines go; default stdout (synchronous writes, so nothing is lost on exit). */
  destination?: DestinationStream;
}

/** Creates the root logger; components take children of it (`log.child({ partition })`). */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const dest = opts.destination ?? pino.destination({ fd: 1, sync: true });
  return pino(
    {
      level: opts.level ?? DEFAULT_LOG_LEVEL,
      base: { component: opts.name ?? "foresight", pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Errors keep their name, message, stack and cause.
      serializers: { err: pino.stdSerializers.err },
    },
    dest,
  );
}
