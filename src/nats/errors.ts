// Classifies JetStream errors where they enter, so callers branch on a meaning, not on codes.
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";

/**
 * True if a compare-and-set write (KV `create`, `update`, or a publish with an expected last
 * sequence) failed because the key or stream moved on: the server answers "wrong last sequence"
 * (JetStreamApiCodes.StreamWrongLastSequence, or StreamWrongLastSequenceUnknown when it cannot
 * tell the current one). A KV `create` of an existing key fails this way too.
 */
export function isRevisionConflict(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}
