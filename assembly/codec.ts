// Narrow per-user storage for the ensemble's profile, count ring and pending forecasts (see
// docs/engine.md, "state per user"). src/engine/codec.ts is the TypeScript twin (same bits).

/** Exponent offset: code 1 is 2^-24 (f64 exponent field 999), code 65535 just under 2^40. */
// @ts-ignore: decorator
@inline const U16_BIAS: u32 = 999 << 10;

/**
 * A non-negative value as a 16-bit float: 6-bit exponent (2^-24 .. 2^39), 10-bit mantissa rounded
 * half up (relative error <= 2^-11; integers up to 2048 exact). <= 0, NaN and values below 2^-24
 * encode as 0; values from 2^40 (and +Infinity) saturate.
 */
// @ts-ignore: decorator
@inline export function encU16(v: f64): u32 {
  if (!(v > 0.0)) return 0;
  const c = <i32>((<u32>(reinterpret<u64>(v) >> 32) + 512) >> 10) - <i32>U16_BIAS;
  return c < 1 ? 0 : c > 65535 ? 65535 : <u32>c;
}

// @ts-ignore: decorator
@inline export function decU16(c: u32): f64 {
  return c == 0 ? 0.0 : reinterpret<f64>(<u64>((c + U16_BIAS) << 10) << 32);
}

/** A log-scale value in [0, 32) as a fixed-point u16 (steps of 1/2048, rounded half up, clamped). */
// @ts-ignore: decorator
@inline export function encLog(v: f64): u32 {
  const q = Math.floor(v * 2048.0 + 0.5);
  return !(q > 0.0) ? 0 : q > 65535.0 ? 65535 : <u32>q;
}

// @ts-ignore: decorator
@inline export function decLog(c: u32): f64 {
  return <f64>c * (1.0 / 2048.0);
}

/** Magnitude exponent offset of encI16: magnitude code 1024 is 2^-14 (f64 exponent field 1009). */
// @ts-ignore: decorator
@inline const I16_BIAS: u32 = 1008 << 10;

/**
 * A signed value as a 16-bit float: sign bit, then the magnitude as a 5-bit exponent (2^-15 ..
 * 2^16) and a 10-bit mantissa rounded half up (away from zero; relative error <= 2^-11).
 * Magnitudes up to 2^-15 (and NaN) encode as 0; from 2^17 (and +-Infinity) they saturate
 * at +-131 008. Used where the value can be negative: the HW season, LSTM-lite's outputs.
 */
// @ts-ignore: decorator
@inline export function encI16(v: f64): u32 {
  const a = Math.abs(v);
  if (!(a > 0.0)) return 0;
  const c = <i32>((<u32>(reinterpret<u64>(a) >> 32) + 512) >> 10) - <i32>I16_BIAS;
  const m: u32 = c < 1 ? 0 : c > 32767 ? 32767 : <u32>c;
  return m == 0 ? 0 : v < 0.0 ? m | 0x8000 : m;
}

// @ts-ignore: decorator
@inline export function decI16(c: u32): f64 {
  const m = c & 0x7fff;
  if (m == 0) return 0.0;
  const a = reinterpret<f64>(<u64>((m + I16_BIAS) << 10) << 32);
  return (c & 0x8000) != 0 ? -a : a;
}

/** Exponent offset of encU8 above 16: code 16 is 16.0 (f64 exponent field 1027, mantissa 0). */
// @ts-ignore: decorator
@inline const U8_BIAS: u32 = (1027 << 4) - 16;

/**
 * A non-negative count in one byte: codes 0..15 are the integers 0..15; from 16 a float with a
 * 4-bit mantissa (16 codes per octave, rounded half up: integers up to 31 exact, relative error
 * <= 2^-5 above), up to code 255 = 507 904. <= 0 and NaN encode as 0; from 516 096 (and
 * +Infinity) it saturates at 255.
 */
// @ts-ignore: decorator
@inline export function encU8(v: f64): u32 {
  if (!(v > 0.0)) return 0;
  if (v < 16.0) return <u32>Math.floor(v + 0.5);
  const c = ((<u32>(reinterpret<u64>(v) >> 32) + 0x8000) >> 16) - U8_BIAS;
  return c > 255 ? 255 : c;
}

// @ts-ignore: decorator
@inline export function decU8(c: u32): f64 {
  return c < 16 ? <f64>c : reinterpret<f64>(<u64>((c + U8_BIAS) << 16) << 32);
}

// Lane forms (SIMD builds): the same codes as the scalar functions above, lane by lane, for every
// input (test/engine/codec.test.ts, through the module's codecEncodeLane/codecDecodeLane exports). Codes
// travel as i32x4 lanes; values as two f64x2 (lanes 0, 1 and lanes 2, 3 of the codes).

/** decU16 of i32x4 code lanes 0 and 1 (`hi` false) or 2 and 3 (`hi` true), as an f64x2. */
// @ts-ignore: decorator
@inline export function decU16Lanes(c: v128, hi: bool): v128 {
  // The f64's high word is (code + bias) << 10, its low word 0; code 0 is 0.0.
  const w = v128.andnot(i32x4.shl(i32x4.add(c, i32x4.splat(U16_BIAS)), 10), i32x4.eq(c, i32x4.splat(0)));
  const z = i32x4.splat(0);
  return hi ? i32x4.shuffle(z, w, 0, 6, 1, 7) : i32x4.shuffle(z, w, 0, 4, 1, 5);
}

/** decU8 of i32x4 code lanes 0 and 1 (`hi` false) or 2 and 3 (`hi` true), as an f64x2. */
// @ts-ignore: decorator
@inline export function decU8Lanes(c: v128, hi: bool): v128 {
  const z = i32x4.splat(0);
  const w = i32x4.shl(i32x4.add(c, i32x4.splat(U8_BIAS)), 16);
  const small = i32x4.lt_u(c, i32x4.splat(16));
  if (hi) {
    const big = i32x4.shuffle(z, w, 0, 6, 1, 7);
    const exact = f64x2.convert_low_i32x4_u(i32x4.shuffle(c, c, 2, 3, 2, 3));
    return v128.bitselect(exact, big, i32x4.shuffle(small, small, 2, 2, 3, 3));
  }
  const big = i32x4.shuffle(z, w, 0, 4, 1, 5);
  const exact = f64x2.convert_low_i32x4_u(c);
  return v128.bitselect(exact, big, i32x4.shuffle(small, small, 0, 0, 1, 1));
}

/** encU16 of the four f64 in a (lanes 0, 1) and b (lanes 2, 3), as i32x4 codes. */
// @ts-ignore: decorator
@inline export function encU16Lanes(a: v128, b: v128): v128 {
  const hw = i32x4.shuffle(a, b, 1, 3, 5, 7);
  const c = i32x4.sub(i32x4.shr_u(i32x4.add(hw, i32x4.splat(512)), 10), i32x4.splat(U16_BIAS));
  // !(v > 0) -> 0 (negative, zero, NaN), as the scalar's first test.
  const pos = i32x4.shuffle(f64x2.gt(a, f64x2.splat(0.0)), f64x2.gt(b, f64x2.splat(0.0)), 1, 3, 5, 7);
  return v128.and(i32x4.min_s(i32x4.max_s(c, i32x4.splat(0)), i32x4.splat(65535)), pos);
}

/** encU8 of the four f64 in a (lanes 0, 1) and b (lanes 2, 3), as i32x4 codes. */
// @ts-ignore: decorator
@inline export function encU8Lanes(a: v128, b: v128): v128 {
  const half = f64x2.splat(0.5);
  const small = i32x4.shuffle(
    i32x4.trunc_sat_f64x2_s_zero(f64x2.floor(f64x2.add(a, half))),
    i32x4.trunc_sat_f64x2_s_zero(f64x2.floor(f64x2.add(b, half))), 0, 1, 4, 5);
  const hw = i32x4.shuffle(a, b, 1, 3, 5, 7);
  const big = i32x4.min_u(i32x4.sub(i32x4.shr_u(i32x4.add(hw, i32x4.splat(0x8000)), 16), i32x4.splat(U8_BIAS)), i32x4.splat(255));
  const sixteen = f64x2.splat(16.0), zero = f64x2.splat(0.0);
  const lt = i32x4.shuffle(f64x2.lt(a, sixteen), f64x2.lt(b, sixteen), 1, 3, 5, 7);
  const pos = i32x4.shuffle(f64x2.gt(a, zero), f64x2.gt(b, zero), 1, 3, 5, 7);
  return v128.and(v128.bitselect(small, big, lt), pos);
}
