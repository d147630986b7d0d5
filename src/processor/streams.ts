// Creates or updates the processor's streams idempotently: running it twice changes nothing,
// running it after a config change updates what the server lets change (limits, replicas).
import {
  DiscardPolicy,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamConfig,
} from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { DEFAULT_REPLICAS, DEFAULT_TELEMETRY_MAX_AGE_MS, DEFAULT_TELEMETRY_MAX_BYTES } from "../config/schema.ts";
import { DEFAULT_DUPLICATE_WINDOW_MS } from "../telemetry/stream.ts";
import type { ProcessorNames } from "./names.ts";

/** Default max age of forecasts, ms (10 min: consumers want the latest, not history). */
export const DEFAULT_FORECASTS_MAX_AGE_MS = 10 * 60_000;
/** Default max age of dead letters, ms (7 days: time for a human to look). */
export const DEFAULT_DEADLETTER_MAX_AGE_MS = 7 * 24 * 3600_000;

/** Stream settings (the `streams` section of the config). */
export interface StreamSettings {
  /** Max age of telemetry, ms. Default {@link DEFAULT_TELEMETRY_MAX_AGE_MS}. */
  telemetryMaxAgeMs?: number;
  /** Max bytes of telemetry; -1 unlimited. Default {@link DEFAULT_TELEMETRY_MAX_BYTES}. */
  telemetryMaxBytes?: number;
  /** Duplicate window for Nats-Msg-Id de-duplication, ms. Default DEFAULT_DUPLICATE_WINDOW_MS of src/telemetry/stream.ts (2 min). */
  duplicateWindowMs?: number;
  /** Max age of forecasts, ms. Default {@link DEFAULT_FORECASTS_MAX_AGE_MS}. */
  forecastsMaxAgeMs?: number;
  /** Max age of dead letters, ms. Default {@link DEFAULT_DEADLETTER_MAX_AGE_MS}. */
  deadLetterMaxAgeMs?: number;
  /** Replicas of each stream and bucket (1 or 3 usually). Default {@link DEFAULT_REPLICAS}. */
  replicas?: number;
}

/** A stream could not be created or updated (the server refused the config). */
export class StreamSetupError extends Error {
  override name = "StreamSetupError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** What {@link ensureStreams} did per stream. */
export type StreamAction = "created" | "updated" | "unchanged";

/** The desired configs of the three streams. */
export function desiredStreamConfigs(names: ProcessorNames, s: StreamSettings = {}): Partial<StreamConfig>[] {
  const replicas = s.replicas ?? DEFAULT_REPLICAS;
  const common = { retention: RetentionPolicy.Limits, storage: StorageType.File, discard: DiscardPolicy.Old, num_replicas: replicas };
  return [
    {
      ...common,
      name: names.telemetryStream,
      subjects: [`${names.prefix}.telemetry.*`],
      max_age: nanos(s.telemetryMaxAgeMs ?? DEFAULT_TELEMETRY_MAX_AGE_MS),
      max_bytes: s.telemetryMaxBytes ?? DEFAULT_TELEMETRY_MAX_BYTES,
      duplicate_window: nanos(s.duplicateWindowMs ?? DEFAULT_DUPLICATE_WINDOW_MS),
    },
    {
      ...common,
      name: names.forecastsStream,
      subjects: [`${names.prefix}.forecasts.*`],
      max_age: nanos(s.forecastsMaxAgeMs ?? DEFAULT_FORECASTS_MAX_AGE_MS),
    },
    {
      ...common,
      name: names.deadLetterStream,
      subjects: [`${names.prefix}.deadletter.*`],
      max_age: nanos(s.deadLetterMaxAgeMs ?? DEFAULT_DEADLETTER_MAX_AGE_MS),
    },
  ];
}

function differs(want: Partial<StreamConfig>, have: StreamConfig): boolean {
  for (const [k, v] of Object.entries(want)) {
    const h = (have as unknown as Record<string, unknown>)[k];
    if (JSON.stringify(h) !== JSON.stringify(v)) return true;
  }
  return false;
}

/** Creates missing streams and updates changed ones; returns what it did per stream name. */
export async function ensureStreams(
  jsm: JetStreamManager,
  names: ProcessorNames,
  settings: StreamSettings = {},
): Promise<Record<string, StreamAction>> {
  const out: Record<string, StreamAction> = {};
  for (const want of desiredStreamConfigs(names, settings)) {
    const name = want.name!;
    try {
      let have: StreamConfig | undefined;
      try {
        have = (await jsm.streams.info(name)).config;
      } catch (err) {
        // 10059 = stream not found
        if (!(err instanceof JetStreamApiError && (err.status === 404 || err.code === 10059))) throw err;
      }
      if (!have) {
        await jsm.streams.add(want as Partial<StreamConfig> & { name: string });
        out[name] = "created";
      } else if (differs(want, have)) {
        // Storage cannot change on a live stream; keep what exists and say so in the error if asked.
        if (want.storage !== have.storage) throw new StreamSetupError(`stream ${name} has storage ${have.storage}, want ${want.storage}: recreate it`);
        await jsm.streams.update(name, { ...have, ...want });
        out[name] = "updated";
      } else out[name] = "unchanged";
    } catch (err) {
      if (err instanceof StreamSetupError) throw err;
      throw new StreamSetupError(`cannot create or update stream ${name}: ${(err as Error).message}`, { cause: err });
    }
  }
  return out;
}
