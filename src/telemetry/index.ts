// Telemetry: the wire format (binary and JSON frames), the hashes, the publisher SDK, the user
// directory and a deterministic generator. See docs/wire-format.md. The public surface is what a
// gateway or a consumer needs; field checks and record writers stay inside the folder.
export { USER_HASH_HIGH_SEED, hash32, murmur3, parseUserHashHex, userHash, userHashBigInt, userHashHex, type UserHash } from "./hash.ts";
export { InvalidEventError, readRecord, writeEventRecord, type EventRecord, type TelemetryEvent } from "./event.ts";
export {
  BAD_FRAME_REASONS, BadFrameError, DEAD_LETTER_DETAIL_HEADER, DEAD_LETTER_REASON_HEADER, DEFAULT_PARTITIONS,
  DEFAULT_SUBJECT_PREFIX, FRAME_HEADER_BYTES, FRAME_MAGIC, FRAME_RECORD_BYTES, FRAME_VERSION, FrameHeaderField,
  FrameLengthError, FrameMagicError, FrameRecordSizeError, FrameReservedError, FrameTooShortError, FrameVersionError,
  JsonFrameError, JsonSyntaxError, decodeFrame, deadLetterSubject, encodeEvents, encodeFrame, isJsonFrame,
  partitionOf, telemetrySubject, telemetryWildcard, type BadFrameReason, type DecodedFrame, type FrameUser,
} from "./frame.ts";
export {
  DEFAULT_ACK_TIMEOUT_MS, DEFAULT_CLOSE_TIMEOUT_MS, DEFAULT_FLUSH_INTERVAL_MS, DEFAULT_MAX_BUFFERED_EVENTS,
  DEFAULT_MAX_EVENTS_PER_FRAME, DEFAULT_MAX_IN_FLIGHT, DirectoryWriteError, FlushTimeoutError, PublishFailedError,
  PublisherClosedError, PublisherConfigError, TelemetryPublisher, type TelemetryPublisherOptions, type TelemetryPublisherStats,
} from "./publisher.ts";
export {
  DEFAULT_DIRECTORY_BUCKET, DirectoryEntryError, UserDirectory, parseDirectoryEntry, type UserDirectoryEntry, type UserDirectoryOptions,
} from "./directory.ts";
export {
  DEFAULT_DIRECTORY_INDEX_MAX_NAMES, DEFAULT_DIRECTORY_INDEX_MAX_USERS, DirectoryIndex, type DirectoryIndexEvent, type DirectoryIndexOptions,
  type DirectoryIndexStats, type UserAttributeLookup,
} from "./directory-index.ts";
export { DEFAULT_DUPLICATE_WINDOW_MS, DEFAULT_TELEMETRY_STREAM, ensureTelemetryStream, type TelemetryStreamOptions } from "./stream.ts";
export { SynthTelemetry, type SynthOptions } from "./synth.ts";
