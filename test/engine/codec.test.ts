// The slot codecs (src/engine/codec.ts and its twin assembly/codec.ts): round trips, the ranges
// where they are exact, rounding bounds, saturation, and the WASM and TypeScript sides giving the
// same codes and values on the same inputs.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, readFileSync } from "node:fs";
import { decI16, decLog, decU16, decU8, encI16, encLog, encU16, encU8 } from "../../src/engine/codec.ts";
import { rng } from "./_util.ts";

type Wasm = {
  codecEncode(kind: number, v: number): number;
  codecDecode(kind: number, c: number): number;
  codecEncodeLane(kind: number, v0: number, v1: number, v2: number, v3: number, lane: number): number;
  codecDecodeLane(kind: number, c0: number, c1: number, c2: number, c3: number, lane: number): number;
};
let wasm: Wasm;

test.before(async () => {
  if (!existsSync("build/engine.wasm")) throw new Error("build/engine.wasm missing: run npm run build:wasm");
  const { instance } = await WebAssembly.instantiate(readFileSync("build/engine.wasm"), {
    // The module imports its (shared) memory: see src/engine/wasm.ts.
    env: { memory: new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: true }), abort() { throw new Error("abort"); } },
  });
  wasm = instance.exports as unknown as Wasm;
});

const TS = [
  { kind: 0, name: "U16", enc: encU16, dec: decU16, codes: 65536 },
  { kind: 1, name: "Log", enc: encLog, dec: decLog, codes: 65536 },
  { kind: 2, name: "I16", enc: encI16, dec: decI16, codes: 65536 },
  { kind: 3, name: "U8", enc: encU8, dec: decU8, codes: 256 },
] as const;

/** Inputs covering every range: specials, integers, halves, powers of two and their neighbours, random magnitudes of both signs. */
function inputs(): number[] {
  const v: number[] = [0, -0, NaN, Infinity, -Infinity, 1e-300, -1e-300, 5e-324, Number.MAX_VALUE, -Number.MAX_VALUE];
  for (let i = 0; i <= 2100; i++) v.push(i, i + 0.5, i - 1e-9, -i, -(i + 0.5));
  for (let e = -40; e <= 45; e++) {
    const p = 2 ** e;
    v.push(p, -p, p * (1 + 2 ** -11), p * (1 - 2 ** -12), p * 1.5, p * (1 + 2 ** -5), p * (1 + 3 * 2 ** -6));
  }
  const r = rng(12);
  for (let i = 0; i < 20000; i++) {
    const m = Math.exp((r() - 0.5) * 70);
    v.push(r() < 0.5 ? m : -m, Math.floor(r() * 600000), r() * 32);
  }
  return v;
}

test("WASM and TypeScript codecs give the same codes and the same decoded bits", () => {
  const xs = inputs();
  for (const c of TS) {
    for (const x of xs) {
      const a = c.enc(x), b = wasm.codecEncode(c.kind, x) >>> 0;
      if (a !== b) assert.unreachable(`${c.name} encode ${x}: ts ${a}, wasm ${b}`);
    }
    for (let code = 0; code < c.codes; code++) {
      const a = c.dec(code), b = wasm.codecDecode(c.kind, code);
      if (!Object.is(a, b)) assert.unreachable(`${c.name} decode ${code}: ts ${a}, wasm ${b}`);
    }
  }
});

test("the lane forms the tick scores and encodes with (U16, U8) give the scalar codes and values in every lane", () => {
  const xs = inputs();
  // Each input visits every lane, next to other inputs (lanes must not leak into each other).
  for (const c of [TS[0], TS[3]]) {
    for (let i = 0; i < xs.length; i++) {
      const q = [xs[i], xs[(i + 1) % xs.length], xs[(i + 7) % xs.length], xs[(i + 13) % xs.length]];
      for (let lane = 0; lane < 4; lane++) {
        const a = c.enc(q[lane]), b = wasm.codecEncodeLane(c.kind, q[0], q[1], q[2], q[3], lane) >>> 0;
        if (a !== b) assert.unreachable(`${c.name} lane ${lane} encode ${q[lane]} (with ${q}): ts ${a}, wasm ${b}`);
      }
    }
    for (let code = 0; code < c.codes; code++) {
      const q = [code, (code * 7 + 1) % c.codes, (code + 9) % c.codes, c.codes - 1 - code];
      for (let lane = 0; lane < 4; lane++) {
        const a = c.dec(q[lane]), b = wasm.codecDecodeLane(c.kind, q[0], q[1], q[2], q[3], lane);
        if (!Object.is(a, b)) assert.unreachable(`${c.name} lane ${lane} decode ${q[lane]}: ts ${a}, wasm ${b}`);
      }
    }
  }
});

test("every code decodes to a value that encodes back to it (codes are fixed points)", () => {
  for (const c of TS) {
    for (let code = 0; code < c.codes; code++) {
      // I16: 0x8000 is negative zero, which encodes as 0.
      if (c.name === "I16" && code === 0x8000) continue;
      if (c.enc(c.dec(code)) !== code) assert.unreachable(`${c.name} code ${code} -> ${c.dec(code)} -> ${c.enc(c.dec(code))}`);
    }
    // Decoded values increase with the code (for I16 within each sign).
    const top = c.name === "I16" ? 0x8000 : c.codes;
    for (let code = 1; code < top; code++) assert.ok(c.dec(code) > c.dec(code - 1), `${c.name} monotone at ${code}`);
  }
});

test("encU8: integers 0..31 exact, relative error <= 2^-5 above, saturating at 255; non-positive and NaN are 0", () => {
  for (let i = 0; i <= 31; i++) assert.is(decU8(encU8(i)), i);
  for (const x of [0, -1, -Infinity, NaN, 0.49]) assert.is(encU8(x), 0);
  assert.is(encU8(0.5), 1); // half up
  assert.is(encU8(15.5), 16);
  assert.is(encU8(16.5), 17);
  assert.is(decU8(255), 507904);
  assert.is(encU8(516095), 255);
  assert.is(encU8(1e12), 255);
  assert.is(encU8(Infinity), 255);
  assert.is(decU8(encU8(32)), 32);
  assert.is(decU8(encU8(33)), 34); // step 2 in [32, 64), rounded half up
  const r = rng(3);
  for (let i = 0; i < 20000; i++) {
    const x = 1 + r() * 500000;
    const d = decU8(encU8(x));
    assert.ok(Math.abs(d - x) <= x * 2 ** -5 + 0.5, `u8 ${x} -> ${d}`);
  }
});

test("encI16: sign kept, relative error <= 2^-11 in 2^-15..2^16, tiny magnitudes 0, saturating at +-131 008", () => {
  const r = rng(4);
  for (let i = 0; i < 20000; i++) {
    const m = 2 ** (-14.9 + r() * 31.8);
    for (const x of [m, -m]) {
      const d = decI16(encI16(x));
      assert.ok(Math.sign(d) === Math.sign(x) && Math.abs(d - x) <= Math.abs(x) * 2 ** -11, `i16 ${x} -> ${d}`);
    }
  }
  for (let i = -2048; i <= 2048; i++) assert.is(decI16(encI16(i)), i); // 11 significant bits
  for (const x of [0, -0, NaN, 2 ** -17, -(2 ** -17)]) assert.is(encI16(x), 0);
  assert.is(decI16(encI16(1e9)), 131008);
  assert.is(decI16(encI16(-Infinity)), -131008);
  assert.is(encI16(-1) & 0x7fff, encI16(1));
  assert.is(decI16(encI16(1 + 2 ** -11)), 1 + 2 ** -10); // half up (away from zero)
  assert.is(decI16(encI16(-(1 + 2 ** -11))), -(1 + 2 ** -10));
});

test("encU16 and encLog keep their v6 behaviour: counts to 2048 exact, log steps of 1/2048", () => {
  for (let i = 0; i <= 2048; i++) assert.is(decU16(encU16(i)), i);
  assert.is(decU16(encU16(2049)), 2050);
  assert.is(encU16(1e30), 65535);
  for (let i = 0; i < 4096; i++) assert.is(decLog(encLog(i / 2048)), i / 2048);
  assert.is(encLog(-3), 0);
  assert.is(encLog(40), 65535);
});

test.run();
