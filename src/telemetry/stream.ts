// Creates (or updates) the JetStream stream that stores telemetry frames. Production deployments
// may create it from their own configuration; this helper is what tests, benches and `dev` setups
// use, and it documents the settings the publisher relies on (the duplicate window above all).
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, JetStreamApiError, type StreamInfo } from "@nats-io/jetstream";
import { DEFAULT_SUBJECT_PREFIX, telemetryWildcard } from "./frame.ts";

/** Default stream name of the telemetry frames. */
export const DEFAULT_TELEMETRY_STREAM = "FORESIGHT_TELEMETRY";
/**
 * Default duplicate window, ms: the publisher's retries of one frame (same Nats-Msg-Id) within it
 * are stored once. It must exceed the longest outage a publisher rides out while retrying.
 */
export const DEFAULT_DUPLICATE_WINDOW_MS = 120_000;

// JetStream API error "stream name already in use with a different configuration" (adding an
// identical configuration succeeds; a different one needs an update).
const STREAM_NAME_IN_USE = 10058;

/** Options of {@link ensureTelemetryStream}. */
export interface TelemetryStreamOptions {
  /** Subject prefix; the stream takes `<prefix>.telemetry.*`. Default "foresight". */
  subjectPrefix?: string;
  /** Stream name. Default {@link DEFAULT_TELEMETRY_STREAM}. */
  streamName?: string;
  /** Duplicate window, ms. Default {@link DEFAULT_DUPLICATE_WINDOW_MS}. */
  duplicateWindowMs?: number;
  /** Replicas (3 in a cluster). Default 1. */
  replicas?: number;
  /** Maximum stored bytes (-1 = unlimited). Default -1. */
  maxBytes?: number;
  /** Maximum age of a frame, ms (0 = unlimited). Default 0. */
  maxAgeMs?: number;
}

/** Creates the telemetry stream, or updates it if it exists; returns its info. */
export async function ensureTelemetryStream(nc: NatsConnection, opts: TelemetryStreamOptions = {}): Promise<StreamInfo> {
  const jsm = await jetstreamManager(nc);
  const config = {
    name: opts.streamName ?? DEFAULT_TELEMETRY_STREAM,
    subjects: [telemetryWildcard(opts.subjectPrefix ?? DEFAULT_SUBJECT_PREFIX)],
    duplicate_window: (opts.duplicateWindowMs ?? DEFAULT_DUPLICATE_WINDOW_MS) * 1_000_000, // ns
    num_replicas: opts.replicas ?? 1,
    max_bytes: opts.maxBytes ?? -1,
    max_age: (opts.maxAgeMs ?? 0) * 1_000_000, // ns
  };
  try {
    return await jsm.streams.add(config);
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === STREAM_NAME_IN_USE) {
      return await jsm.streams.update(config.name, config);
    }
    throw err;
  }
}
