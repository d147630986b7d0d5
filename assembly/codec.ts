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
