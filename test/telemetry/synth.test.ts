import { test } from "uvu";
import * as assert from "uvu/assert";
import { readRecord } from "../../src/telemetry/event.ts";
import { decodeFrame, encodeEvents, FRAME_HEADER_BYTES } from "../../src/telemetry/frame.ts";
import { SynthTelemetry } from "../../src/telemetry/synth.ts";

test("same seed, same bytes; another seed, other bytes", () => {
  const a = new SynthTelemetry({ seed: 42, users: 50 }).frame(500);
  const b = new SynthTelemetry({ seed: 42, users: 50 }).frame(500);
  const c = new SynthTelemetry({ seed: 43, users: 50 }).frame(500);
  assert.equal(a, b);
  assert.not.equal(a, c);
});

test("frame() decodes and equals encodeEvents(events()) for the same draws", () => {
  const frame = new SynthTelemetry({ seed: 7 }).frame(300);
  const events = new SynthTelemetry({ seed: 7 }).events(300);
  const d = decodeFrame(frame);
  assert.is(d.count, 300);
  assert.equal(frame.subarray(FRAME_HEADER_BYTES), encodeEvents(events).subarray(FRAME_HEADER_BYTES));
});

test("times start and advance as configured; users are Zipf-skewed", () => {
  const g = new SynthTelemetry({ users: 1_000, zipfExponent: 1.2, startTimeMs: 5_000, spacingMs: 2, seed: 3 });
  const n = 20_000;
  const d = decodeFrame(g.frame(n));
  assert.is(readRecord(d.records, 0).timeMs, 5_000);
  assert.is(readRecord(d.records, n - 1).timeMs, 5_000 + 2 * (n - 1));
  const top = g.userHashes[0];
  const tail = g.userHashes[999];
  let topCount = 0;
  let tailCount = 0;
  for (let i = 0; i < n; i++) {
    const lo = readRecord(d.records, i).userHashLo;
    if (lo === top.lo) topCount++;
    if (lo === tail.lo) tailCount++;
  }
  // Rank 1 carries 1/H(1000, 1.2) ≈ 22 % of events; rank 1000 about 1/1000^1.2 of that.
  assert.ok(topCount > 0.18 * n && topCount < 0.26 * n, `top user share ${topCount / n}`);
  assert.ok(tailCount < 10, `tail user count ${tailCount}`);
  const uniform = new SynthTelemetry({ users: 10, zipfExponent: 0, seed: 3 });
  const counts = new Array(10).fill(0);
  for (let i = 0; i < 10_000; i++) counts[uniform.nextUserIndex()]++;
  for (const c of counts) assert.ok(c > 850 && c < 1150, `uniform count ${c}`);
});

test.run();
