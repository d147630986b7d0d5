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
