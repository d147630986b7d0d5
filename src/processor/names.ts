// Subjects, stream and bucket names derived from the subject prefix, in one place so the
// processor, the publisher, tests and benchmarks agree.

import { DEFAULT_SUBJECT_PREFIX, deadLetterSubject as deadLetterSubjectOf } from "../telemetry/frame.ts";

/** Names of everything the processor creates for one prefix. */
export interface ProcessorNames {
  prefix: string;
  /** Stream of telemetry frames, subjects `<prefix>.telemetry.*`. */
  telemetryStream: string;
  /** Stream of forecast messages, subjects `<prefix>.forecasts.*`. */
  forecastsStream: string;
  /** Stream of dead-lettered frames, subjects `<prefix>.deadletter.*` (the processor uses `.deadletter.<partition>`). */
  deadLetterStream: string;
  /** KV bucket of partition leases and member heartbeats. */
  leaseBucket: string;
  /** Object Store bucket of per-partition checkpoints. */
  checkpointBucket: string;
  telemetrySubject(partition: number): string;
  forecastsSubject(partition: number): string;
  deadLetterSubject(partition: number): string;
}

/** Stream and bucket names that the config may set explicitly (`nats.streams`, `nats.kv`, `nats.objectStore`). */
export interface ProcessorNameOverrides {
  telemetryStream?: string;
  forecastsStream?: string;
  deadLetterStream?: string;
  leaseBucket?: string;
  checkpointBucket?: string;
}

/**
 * Derives all names from a subject prefix (letters, digits, `-`, `_`; may contain dots); for the
 * default prefix they equal the config schema's defaults (FORESIGHT_TELEMETRY, foresight-leases...).
 */
export function processorNames(prefix = DEFAULT_SUBJECT_PREFIX, overrides: ProcessorNameOverrides = {}): ProcessorNames {
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(prefix)) {
    throw new RangeError(`subject prefix must be dot-separated tokens of letters, digits, '-' or '_': ${JSON.stringify(prefix)}`);
  }
  const upper = prefix.replace(/[.-]/g, "_").toUpperCase();
  const lower = prefix.replace(/\./g, "_");
  return {
    prefix,
    telemetryStream: overrides.telemetryStream ?? `${upper}_TELEMETRY`,
    forecastsStream: overrides.forecastsStream ?? `${upper}_FORECASTS`,
    deadLetterStream: overrides.deadLetterStream ?? `${upper}_DEAD_LETTER`,
    leaseBucket: overrides.leaseBucket ?? `${lower}-leases`,
    checkpointBucket: overrides.checkpointBucket ?? `${lower}-checkpoints`,
    telemetrySubject: (p) => `${prefix}.telemetry.${p}`,
    forecastsSubject: (p) => `${prefix}.forecasts.${p}`,
    deadLetterSubject: (p) => deadLetterSubjectOf(prefix, p),
  };
}
