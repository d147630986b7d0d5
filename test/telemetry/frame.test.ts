import { test } from "uvu";
import * as assert from "uvu/assert";
import { EVENT_RECORD_BYTES, EventFlag } from "../../src/wire/layout.ts";
import { hash32, userHash, userHashHex } from "../../src/telemetry/hash.ts";
import { InvalidEventError, readRecord } from "../../src/telemetry/event.ts";
import {
  BadFrameError,
  FRAME_HEADER_BYTES,
  FrameLengthError,
  FrameMagicError,
  FrameRecordSizeError,
  FrameReservedError,
  FrameTooShortError,
  FrameVersionError,
  JsonFrameError,
  JsonSyntaxError,
  decodeFrame,
  deadLetterHeaderValues,
  encodeEvents,
  encodeFrame,
  partitionOf,
  telemetrySubject,
} from "../../src/telemetry/frame.ts";

const enc = new TextEncoder();

const sample = [
  { user: "alice", timeMs: 1_700_000_000_123, inputTokens: 120, outputTokens: 30.9, route: "/v1/chat", sourceIp: "10.0.0.1", userAgent: "curl/8", status: 200, latencyMs: 41, bytes: 512 },
  { user: "bob", timeMs: 1_700_000_000_456, status: 429, throttled: true, error: true },
];

test("binary frame: header bytes are exactly as documented", () => {
  const frame = encodeEvents(sample);
  assert.is(frame.length, FRAME_HEADER_BYTES + 2 * EVENT_RECORD_BYTES);
  assert.equal([...frame.subarray(0, 4)], [0x46, 0x53, 0x54, 0x4c]); // "FSTL"
  const v = new DataView(frame.buffer);
  assert.is(v.getUint16(4, true), 1);
  assert.is(v.getUint16(6, true), 48);
  assert.is(v.getUint32(8, true), 2);
  assert.is(v.getUint32(12, true), 0);
});

test("binary frame: round trip, records decoded as a zero-copy view", () => {
  const frame = encodeEvents(sample);
  const d = decodeFrame(frame);
  assert.is(d.format, "binary");
  assert.is(d.count, 2);
  assert.is(d.records.buffer, frame.buffer);
  assert.is(d.records.byteOffset, FRAME_HEADER_BYTES);
  const a = readRecord(d.records, 0);
  const ha = userHash("alice");
  assert.equal(a, {
    userHashLo: ha.lo, userHashHi: ha.hi, timeMs: 1_700_000_000_123, inputTokens: 120, outputTokens: 30,
    routeHash: hash32("/v1/chat"), ipHash: hash32("10.0.0.1"), uaHash: hash32("curl/8"),
    latencyMs: 41, bytes: 512, status: 200, flags: 0,
  });
  const b = readRecord(d.records, 1);
  assert.is(b.flags, EventFlag.throttled | EventFlag.error);
  assert.is(b.routeHash, 0);
  // Re-framing the records reproduces the frame byte for byte.
  assert.equal(encodeFrame(d.records), frame);
});

test("binary frame: an empty frame is valid", () => {
  const d = decodeFrame(encodeFrame(new Uint8Array(0)));
  assert.is(d.count, 0);
  assert.is(d.records.length, 0);
});

function rejects(bytes: Uint8Array, cls: Function, reason: string, detail?: RegExp) {
  try {
    decodeFrame(bytes);
  } catch (err) {
    assert.instance(err, cls);
    assert.instance(err, BadFrameError);
    assert.is((err as BadFrameError).reason, reason);
    if (detail) assert.match((err as Error).message, detail);
    return err as BadFrameError;
  }
  assert.unreachable(`expected ${cls.name}`);
  throw new Error("unreachable");
}

test("binary frame: every failure mode has its class and reason", () => {
  const good = encodeEvents(sample);
  rejects(good.subarray(0, 10), FrameTooShortError, "too_short", /10 bytes/);
  rejects(new Uint8Array(0), FrameTooShortError, "too_short");
  rejects(enc.encode("hello world, not a frame"), FrameMagicError, "bad_magic", /0x6c6c6568/);
  rejects(enc.encode("xy"), FrameMagicError, "bad_magic");
  const v2 = good.slice(); new DataView(v2.buffer).setUint16(4, 2, true);
  rejects(v2, FrameVersionError, "bad_version", /version 2/);
  const v0 = good.slice(); new DataView(v0.buffer).setUint16(4, 0, true);
  rejects(v0, FrameVersionError, "bad_version");
  const rs = good.slice(); new DataView(rs.buffer).setUint16(6, 56, true);
  rejects(rs, FrameRecordSizeError, "bad_record_size", /56/);
  const res = good.slice(); new DataView(res.buffer).setUint32(12, 7, true);
  rejects(res, FrameReservedError, "bad_reserved");
  rejects(good.subarray(0, good.length - 1), FrameLengthError, "length_mismatch", /2 records × 48 bytes = 96, but 95/);
  const extra = new Uint8Array(good.length + 48); extra.set(good);
  rejects(extra, FrameLengthError, "length_mismatch");
  const cnt = good.slice(); new DataView(cnt.buffer).setUint32(8, 3, true);
  rejects(cnt, FrameLengthError, "length_mismatch");
});

test("JSON frame: object and array forms, ISO time, model alias, users listed", () => {
  const one = decodeFrame(enc.encode(`  {"user":"carol","time":"2024-01-02T03:04:05.006Z","inputTokens":5,"model":"llama","segment":"smb","plan":"pro"}`));
  assert.is(one.format, "json");
  assert.is(one.count, 1);
  const r = readRecord(one.records, 0);
  assert.is(r.timeMs, Date.parse("2024-01-02T03:04:05.006Z"));
  assert.is(r.routeHash, hash32("llama"));
  assert.is(r.inputTokens, 5);
  assert.equal(one.users, [{ hashHex: userHashHex(userHash("carol")), user: "carol", segment: "smb", plan: "pro" }]);

  const arr = decodeFrame(enc.encode(JSON.stringify([
    { user: "alice", time: 1_700_000_000_123, inputTokens: 120, outputTokens: 30.9, route: "/v1/chat", sourceIp: "10.0.0.1", userAgent: "curl/8", status: 200, latencyMs: 41, bytes: 512, extra: "ignored" },
    { user: "bob", time: 1_700_000_000_456, status: 429, throttled: true, error: true },
    { user: "alice", time: 1_700_000_000_500, plan: "free" },
  ])));
  assert.is(arr.count, 3);
  // The JSON form produces the same bytes as the binary encoder for the same events.
  assert.equal(arr.records.subarray(0, 96), encodeEvents(sample).subarray(FRAME_HEADER_BYTES));
  assert.is(arr.users!.length, 2);
  assert.is(arr.users!.find((u) => u.user === "alice")!.plan, "free");
});

test("JSON frame: rejections name the field and the element index", () => {
  rejects(enc.encode(`[{"user":"a","time":1},`), JsonSyntaxError, "json_syntax", /does not parse/);
  let e = rejects(enc.encode(`[{"user":"a","time":1},{"time":2}]`), JsonFrameError, "json_invalid", /\[1\]\.user/) as JsonFrameError;
  assert.is(e.path, "[1].user");
  assert.is(e.index, 1);
  e = rejects(enc.encode(`{"user":"a"}`), JsonFrameError, "json_invalid", /time/) as JsonFrameError;
  assert.is(e.path, "time");
  assert.is(e.index, -1);
  e = rejects(enc.encode(`[{"user":"a","time":1,"inputTokens":-3}]`), JsonFrameError, "json_invalid") as JsonFrameError;
  assert.is(e.path, "[0].inputTokens");
  e = rejects(enc.encode(`[{"user":"a","time":"yesterday-ish"}]`), JsonFrameError, "json_invalid", /not a valid time/) as JsonFrameError;
  assert.is(e.path, "[0].time");
  rejects(enc.encode(`[{"user":"a","time":1,"status":70000}]`), JsonFrameError, "json_invalid", /status/);
  rejects(enc.encode(`[1]`), JsonFrameError, "json_invalid", /\[0\]/);
  const dl = deadLetterHeaderValues(e);
  assert.is(dl.reason, "json_invalid");
  assert.not.match(dl.detail, /[\r\n]/);
});

test("encodeEvents: bad event throws InvalidEventError naming the field", () => {
  try {
    encodeEvents([{ user: "a", inputTokens: Number.NaN }]);
    assert.unreachable();
  } catch (err) {
    assert.instance(err, InvalidEventError);
    assert.is((err as InvalidEventError).field, "inputTokens");
  }
  assert.throws(() => encodeEvents([{ user: "" }]), (e: unknown) => e instanceof InvalidEventError && e.field === "user");
});

test("partition and subject", () => {
  assert.is(partitionOf(0xffffffff, 8), 7);
  assert.is(partitionOf(userHash("alice").lo, 8), userHash("alice").lo % 8);
  assert.is(telemetrySubject("foresight", 3), "foresight.telemetry.3");
});

test.run();
