// The telemetry wire format (docs/wire-format.md): a binary batch frame, a 16-byte little-endian
// header followed by `count` fixed 48-byte records, or a JSON frame for convenience. Decoding a
// binary frame is zero-copy: the processor copies `records` straight into the engine's ingress
// buffer. Every way a frame can be bad has its own error class with a short `reason` code, used as
// the dead-letter header value and as the metric label.
import { z } from "zod";
import { EVENT_RECORD_BYTES } from "../wire/layout.ts";
import { hash32, userHash, userHashHex } from "./hash.ts";
import {
  I32_MAX,
  U16_MAX,
  checkUser,
  eventFlags,
  writeEventRecord,
  writeRecord,
  type TelemetryEvent,
} from "./event.ts";

/** Frame magic: the ASCII bytes "FSTL" in this order, i.e. u32 little-endian 0x4c545346. */
export const FRAME_MAGIC = 0x4c545346;
/** The frame version this code writes and the highest it reads. */
export const FRAME_VERSION = 1;
/** Bytes of the frame header. */
export const FRAME_HEADER_BYTES = 16;
/** Bytes per record in a version-1 frame (= EVENT_RECORD_BYTES). */
export const FRAME_RECORD_BYTES = EVENT_RECORD_BYTES;

/** Byte offsets of the header fields (all little-endian). */
export const FrameHeaderField = {
  /** u32: {@link FRAME_MAGIC}. */
  magic: 0,
  /** u16: {@link FRAME_VERSION}. */
  version: 4,
  /** u16: bytes per record; 48 in version 1. */
  recordBytes: 6,
  /** u32: number of records that follow the header. */
  count: 8,
  /** u32: reserved, must be 0 in version 1. */
  reserved: 12,
} as const;

/** Default subject prefix: frames go to `<prefix>.telemetry.<partition>`. */
export const DEFAULT_SUBJECT_PREFIX = "foresight";
/** Default number of partitions P (partition = userHash.lo % P). */
export const DEFAULT_PARTITIONS = 8;
/** Header naming why a frame was dead-lettered: a {@link BadFrameReason}. */
export const DEAD_LETTER_REASON_HEADER = "Foresight-Reason";
/** Header with the human-readable detail of a dead-lettered frame (one line, <= 512 chars). */
export const DEAD_LETTER_DETAIL_HEADER = "Foresight-Detail";

/** Short machine codes of the ways a frame can be bad. */
export type BadFrameReason =
  | "too_short"
  | "bad_magic"
  | "bad_version"
  | "bad_record_size"
  | "bad_reserved"
  | "length_mismatch"
  | "json_syntax"
  | "json_invalid";

/** Every reason code, for metric label pre-registration and docs. */
export const BAD_FRAME_REASONS: readonly BadFrameReason[] = [
  "too_short",
  "bad_magic",
  "bad_version",
  "bad_record_size",
  "bad_reserved",
  "length_mismatch",
  "json_syntax",
  "json_invalid",
];

/** Base of every frame rejection: `reason` is the short code, `message` the detail. */
export class BadFrameError extends Error {
  override name = "BadFrameError";
  constructor(
    /** Machine code: dead-letter header value and metric label. */
    readonly reason: BadFrameReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Fewer bytes than a header (and not JSON). */
export class FrameTooShortError extends BadFrameError {
  override name = "FrameTooShortError";
  constructor(readonly byteLength: number) {
    super("too_short", `frame of ${byteLength} bytes is shorter than the ${FRAME_HEADER_BYTES}-byte header`);
  }
}

/** The first 4 bytes are not "FSTL" (and the frame is not JSON). */
export class FrameMagicError extends BadFrameError {
  override name = "FrameMagicError";
  constructor(readonly magic: number) {
    super("bad_magic", `bad magic 0x${magic.toString(16).padStart(8, "0")} (expected "FSTL" = 0x4c545346 LE)`);
  }
}

/** A version this decoder does not know (0 or > FRAME_VERSION). */
export class FrameVersionError extends BadFrameError {
  override name = "FrameVersionError";
  constructor(readonly version: number) {
    super("bad_version", `unsupported frame version ${version} (this decoder reads 1..${FRAME_VERSION})`);
  }
}

/** recordBytes not allowed by the frame's version (version 1: exactly 48). */
export class FrameRecordSizeError extends BadFrameError {
  override name = "FrameRecordSizeError";
  constructor(readonly recordBytes: number, readonly version: number) {
    super("bad_record_size", `recordBytes ${recordBytes} not allowed in version ${version} (expected ${FRAME_RECORD_BYTES})`);
  }
}

/** The reserved header word is not 0. */
export class FrameReservedError extends BadFrameError {
  override name = "FrameReservedError";
  constructor(readonly reserved: number) {
    super("bad_reserved", `reserved header word is ${reserved}, must be 0 in version ${FRAME_VERSION}`);
  }
}

/** count × recordBytes differs from the bytes after the header (truncated or trailing bytes). */
export class FrameLengthError extends BadFrameError {
  override name = "FrameLengthError";
  constructor(readonly count: number, readonly recordBytes: number, readonly bodyBytes: number) {
    super(
      "length_mismatch",
      `header says ${count} records × ${recordBytes} bytes = ${count * recordBytes}, but ${bodyBytes} bytes follow the header`,
    );
  }
}

/** A JSON frame that does not parse. */
export class JsonSyntaxError extends BadFrameError {
  override name = "JsonSyntaxError";
  constructor(cause: unknown) {
    super("json_syntax", `JSON frame does not parse: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

/** A JSON frame that parses but whose events miss or mistype fields; `path` names the first one. */
export class JsonFrameError extends BadFrameError {
  override name = "JsonFrameError";
  constructor(
    /** Path of the first bad field, e.g. "[3].user" (array frame) or "inputTokens" (object frame). */
    readonly path: string,
    /** Index of the bad event in an array frame; -1 for an object frame or the frame itself. */
    readonly index: number,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super("json_invalid", `JSON frame rejected at ${path || "(root)"}: ${detail}`, options);
  }
}

/** One user named by a JSON frame (for the user directory). */
export interface FrameUser {
  /** 16-hex user hash (see `userHashHex`). */
  hashHex: string;
  /** The plain user key. */
  user: string;
  segment?: string;
  plan?: string;
}

/** A decoded frame. */
export interface DecodedFrame {
  /** "binary" for an FSTL frame, "json" for a JSON frame. */
  format: "binary" | "json";
  /** Number of records. */
  count: number;
  /**
   * The records, count × 48 bytes, layout of src/wire/layout.ts. For a binary frame a view into
   * the input bytes (no copy): copy it before the input buffer is reused.
   */
  records: Uint8Array;
  /** JSON frames only: the distinct users they name, with segment/plan when given. */
  users?: FrameUser[];
}

function u32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}
function u16(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8);
}

/** True if the first non-whitespace byte is `{` or `[` (a JSON frame). */
export function isJsonFrame(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) continue;
    return c === 0x7b || c === 0x5b;
  }
  return false;
}

/** Decodes a binary or JSON frame, or throws a {@link BadFrameError} subclass. */
export function decodeFrame(bytes: Uint8Array): DecodedFrame {
  // "FSTL" starts with 'F', never whitespace, so a binary frame is never taken for JSON.
  if (bytes.length > 0 && bytes[0] !== 0x46 && isJsonFrame(bytes)) return decodeJsonFrame(bytes);
  return decodeBinaryFrame(bytes);
}

/** Decodes a binary frame without copying its records, or throws a {@link BadFrameError} subclass. */
export function decodeBinaryFrame(bytes: Uint8Array): DecodedFrame {
  if (bytes.length < FRAME_HEADER_BYTES) {
    // A short frame whose first bytes are not even the magic's prefix is a wrong-format frame.
    const n = Math.min(4, bytes.length);
    for (let i = 0; i < n; i++) {
      if (bytes[i] !== ((FRAME_MAGIC >>> (8 * i)) & 0xff)) throw new FrameMagicError(n === 4 ? u32(bytes, 0) : prefixWord(bytes, n));
    }
    throw new FrameTooShortError(bytes.length);
  }
  const magic = u32(bytes, FrameHeaderField.magic);
  if (magic !== FRAME_MAGIC) throw new FrameMagicError(magic);
  const version = u16(bytes, FrameHeaderField.version);
  if (version < 1 || version > FRAME_VERSION) throw new FrameVersionError(version);
  const recordBytes = u16(bytes, FrameHeaderField.recordBytes);
  if (recordBytes !== FRAME_RECORD_BYTES) throw new FrameRecordSizeError(recordBytes, version);
  const reserved = u32(bytes, FrameHeaderField.reserved);
  if (reserved !== 0) throw new FrameReservedError(reserved);
  const count = u32(bytes, FrameHeaderField.count);
  const bodyBytes = bytes.length - FRAME_HEADER_BYTES;
  if (count * recordBytes !== bodyBytes) throw new FrameLengthError(count, recordBytes, bodyBytes);
  return { format: "binary", count, records: bytes.subarray(FRAME_HEADER_BYTES) };
}

function prefixWord(bytes: Uint8Array, n: number): number {
  let w = 0;
  for (let i = 0; i < n; i++) w |= bytes[i] << (8 * i);
  return w >>> 0;
}

/** Writes a version-1 header for `count` records at the start of `target`. */
export function writeFrameHeader(target: Uint8Array, count: number): void {
  if (target.length < FRAME_HEADER_BYTES) throw new RangeError(`frame header needs ${FRAME_HEADER_BYTES} bytes`);
  const v = new DataView(target.buffer, target.byteOffset, FRAME_HEADER_BYTES);
  v.setUint32(FrameHeaderField.magic, FRAME_MAGIC, true);
  v.setUint16(FrameHeaderField.version, FRAME_VERSION, true);
  v.setUint16(FrameHeaderField.recordBytes, FRAME_RECORD_BYTES, true);
  v.setUint32(FrameHeaderField.count, count, true);
  v.setUint32(FrameHeaderField.reserved, 0, true);
}

/**
 * Builds a binary frame around `records` (a whole number of 48-byte records, copied once).
 * `count` defaults to records.byteLength / 48.
 */
export function encodeFrame(records: Uint8Array, count = records.byteLength / FRAME_RECORD_BYTES): Uint8Array {
  if (!Number.isInteger(count) || count < 0 || count * FRAME_RECORD_BYTES > records.byteLength) {
    throw new RangeError(`encodeFrame: ${records.byteLength} bytes do not hold ${count} records of ${FRAME_RECORD_BYTES} bytes`);
  }
  const frame = new Uint8Array(FRAME_HEADER_BYTES + count * FRAME_RECORD_BYTES);
  writeFrameHeader(frame, count);
  frame.set(records.subarray(0, count * FRAME_RECORD_BYTES), FRAME_HEADER_BYTES);
  return frame;
}

/** Builds a binary frame from events (hashing each field; no caches, for tools and tests). Throws InvalidEventError. */
export function encodeEvents(events: readonly TelemetryEvent[], nowMs = Date.now()): Uint8Array {
  const frame = new Uint8Array(FRAME_HEADER_BYTES + events.length * FRAME_RECORD_BYTES);
  writeFrameHeader(frame, events.length);
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  events.forEach((e, i) => {
    const h = userHash(checkUser(e.user));
    const offset = FRAME_HEADER_BYTES + i * FRAME_RECORD_BYTES;
    writeEventRecord(view, offset, e, h.lo, h.hi, hash32(e.route), hash32(e.sourceIp), hash32(e.userAgent), nowMs);
  });
  return frame;
}

// ---- JSON frames -------------------------------------------------------------------------------

const count = (max: number) => z.number().min(0).max(max).optional();
const jsonEvent = z
  .object({
    user: z.string().min(1),
    time: z.union([z.number(), z.string()]).optional(),
    timeMs: z.number().optional(),
    inputTokens: count(I32_MAX),
    outputTokens: count(I32_MAX),
    route: z.string().optional(),
    model: z.string().optional(),
    sourceIp: z.string().optional(),
    userAgent: z.string().optional(),
    status: count(U16_MAX),
    latencyMs: count(I32_MAX),
    bytes: count(I32_MAX),
    throttled: z.boolean().optional(),
    error: z.boolean().optional(),
    segment: z.string().optional(),
    plan: z.string().optional(),
  })
  .transform((e, ctx) => {
    let timeMs: number;
    if (typeof e.time === "number") timeMs = e.time;
    else if (typeof e.time === "string") timeMs = Date.parse(e.time);
    else if (e.timeMs !== undefined) timeMs = e.timeMs;
    else {
      ctx.addIssue({ code: "custom", message: "required: `time` (ms since the epoch or an ISO-8601 string)", path: ["time"] });
      return z.NEVER;
    }
    if (!Number.isFinite(timeMs)) {
      ctx.addIssue({ code: "custom", message: `not a valid time: ${JSON.stringify(e.time ?? e.timeMs)}`, path: ["time"] });
      return z.NEVER;
    }
    return { ...e, timeMs };
  });
type JsonEvent = z.output<typeof jsonEvent>;

function toRecord(e: JsonEvent) {
  const h = userHash(e.user);
  return {
    userHashLo: h.lo,
    userHashHi: h.hi,
    timeMs: e.timeMs,
    inputTokens: Math.trunc(e.inputTokens ?? 0),
    outputTokens: Math.trunc(e.outputTokens ?? 0),
    // `model` stands in for `route` when a gateway only knows the model.
    routeHash: hash32(e.route ?? e.model),
    ipHash: hash32(e.sourceIp),
    uaHash: hash32(e.userAgent),
    latencyMs: Math.trunc(e.latencyMs ?? 0),
    bytes: Math.trunc(e.bytes ?? 0),
    status: Math.trunc(e.status ?? 0),
    flags: eventFlags(e),
  };
}

function jsonError(err: z.ZodError, index: number): JsonFrameError {
  const issue = err.issues[0];
  let path = index >= 0 ? `[${index}]` : "";
  for (const p of issue?.path ?? []) path += typeof p === "number" ? `[${p}]` : path ? `.${String(p)}` : String(p);
  return new JsonFrameError(path, index, issue?.message ?? err.message, { cause: err });
}

const textDecoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Decodes a JSON frame (one event object, or an array of them) into records. A frame with any bad
 * event is rejected whole (JsonFrameError naming the field and index): a partial apply could not be
 * retried without duplicates.
 */
export function decodeJsonFrame(bytes: Uint8Array): DecodedFrame {
  let doc: unknown;
  try {
    doc = JSON.parse(textDecoder.decode(bytes));
  } catch (err) {
    throw new JsonSyntaxError(err);
  }
  const isArray = Array.isArray(doc);
  const items: unknown[] = isArray ? (doc as unknown[]) : [doc];
  if (!isArray && (typeof doc !== "object" || doc === null)) {
    throw new JsonFrameError("", -1, "expected an event object or an array of event objects");
  }
  const records = new Uint8Array(items.length * FRAME_RECORD_BYTES);
  const view = new DataView(records.buffer);
  const users = new Map<string, FrameUser>();
  for (let i = 0; i < items.length; i++) {
    const parsed = jsonEvent.safeParse(items[i]);
    if (!parsed.success) throw jsonError(parsed.error, isArray ? i : -1);
    const r = toRecord(parsed.data);
    writeRecord(view, i * FRAME_RECORD_BYTES, r);
    const hashHex = userHashHex({ lo: r.userHashLo, hi: r.userHashHi });
    const known = users.get(hashHex);
    if (!known) {
      const u: FrameUser = { hashHex, user: parsed.data.user };
      if (parsed.data.segment !== undefined) u.segment = parsed.data.segment;
      if (parsed.data.plan !== undefined) u.plan = parsed.data.plan;
      users.set(hashHex, u);
    } else {
      // Later events may carry the segment/plan the first one lacked.
      if (known.segment === undefined && parsed.data.segment !== undefined) known.segment = parsed.data.segment;
      if (known.plan === undefined && parsed.data.plan !== undefined) known.plan = parsed.data.plan;
    }
  }
  return { format: "json", count: items.length, records, users: [...users.values()] };
}

// ---- Subjects and dead letters -----------------------------------------------------------------

/**
 * The partition of a user: userHash.lo mod P (unsigned). Gateways in other languages compute the
 * same with the low word of the documented hash.
 */
export function partitionOf(userHashLo: number, partitions: number): number {
  return (userHashLo >>> 0) % partitions;
}

/** The subject of a partition: `<prefix>.telemetry.<partition>`. */
export function telemetrySubject(prefix: string, partition: number): string {
  return `${prefix}.telemetry.${partition}`;
}

/** The wildcard subject of all partitions: `<prefix>.telemetry.*`. */
export function telemetryWildcard(prefix: string): string {
  return `${prefix}.telemetry.*`;
}

/** The dead-letter subject for frames rejected on a partition: `<prefix>.deadletter.<partition>`. */
export function deadLetterSubject(prefix: string, partition: number): string {
  return `${prefix}.deadletter.${partition}`;
}

/** The dead-letter header values of a rejection: reason code, and a one-line detail (<= 512 chars). */
export function deadLetterHeaderValues(err: BadFrameError): { reason: BadFrameReason; detail: string } {
  const detail = err.message.replace(/[\r\n]+/g, " ").slice(0, 512);
  return { reason: err.reason, detail };
}
