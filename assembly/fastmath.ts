// exp for the GRU's gates, written with IEEE +, -, *, / and bit moves only, so the TypeScript
// mirror (src/engine/fastmath.ts) computes the very same bits (Math.exp of V8 and the AS
// standard library may differ in the last bit), and so it vectorises: expV is the same sequence
// on f64x2 lanes (no FMA in WASM SIMD; lane results equal the scalar ones). Accuracy: the
// argument is clamped to [-708, 708]; Cody-Waite reduction x = k ln2 + r, |r| <= ln2 / 2, and a
// degree-13 Taylor polynomial: within 2 ulp of exp.
// @ts-ignore: decorator
@inline const LOG2E: f64 = 1.4426950408889634;
// @ts-ignore: decorator
@inline const LN2_HI: f64 = 6.93147180369123816490e-01;
// @ts-ignore: decorator
@inline const LN2_LO: f64 = 1.90821492927058770002e-10;
/** 1.5 * 2^52: adding it rounds to an integer held in the low mantissa bits. */
// @ts-ignore: decorator
@inline const MAGIC: f64 = 6755399441055744.0;
// @ts-ignore: decorator
@inline const MAGIC_BITS: i64 = 0x4338000000000000;
// @ts-ignore: decorator
@inline const C2: f64 = 1.0 / 2.0;
// @ts-ignore: decorator
@inline const C3: f64 = 1.0 / 6.0;
// @ts-ignore: decorator
@inline const C4: f64 = 1.0 / 24.0;
// @ts-ignore: decorator
@inline const C5: f64 = 1.0 / 120.0;
// @ts-ignore: decorator
@inline const C6: f64 = 1.0 / 720.0;
// @ts-ignore: decorator
@inline const C7: f64 = 1.0 / 5040.0;
// @ts-ignore: decorator
@inline const C8: f64 = 1.0 / 40320.0;
// @ts-ignore: decorator
@inline const C9: f64 = 1.0 / 362880.0;
// @ts-ignore: decorator
@inline const C10: f64 = 1.0 / 3628800.0;
// @ts-ignore: decorator
@inline const C11: f64 = 1.0 / 39916800.0;
// @ts-ignore: decorator
@inline const C12: f64 = 1.0 / 479001600.0;
// @ts-ignore: decorator
@inline const C13: f64 = 1.0 / 6227020800.0;

/** exp(x), scalar. */
// @ts-ignore: decorator
@inline export function expS(x: f64): f64 {
  x = Math.min(Math.max(x, -708.0), 708.0);
  const t = x * LOG2E + MAGIC;
  const k = t - MAGIC;
  const r = (x - k * LN2_HI) - k * LN2_LO;
  let p = C13;
  p = p * r + C12;
  p = p * r + C11;
  p = p * r + C10;
  p = p * r + C9;
  p = p * r + C8;
  p = p * r + C7;
  p = p * r + C6;
  p = p * r + C5;
  p = p * r + C4;
  p = p * r + C3;
  p = p * r + C2;
  p = p * r + 1.0;
  p = p * r + 1.0;
  return p * reinterpret<f64>((reinterpret<i64>(t) - MAGIC_BITS + 1023) << 52);
}

/** exp on both f64 lanes: the same operations as expS, lane by lane. */
// @ts-ignore: decorator
@inline export function expV(x: v128): v128 {
  x = f64x2.min(f64x2.max(x, f64x2.splat(-708.0)), f64x2.splat(708.0));
  const t = f64x2.add(f64x2.mul(x, f64x2.splat(LOG2E)), f64x2.splat(MAGIC));
  const k = f64x2.sub(t, f64x2.splat(MAGIC));
  const r = f64x2.sub(f64x2.sub(x, f64x2.mul(k, f64x2.splat(LN2_HI))), f64x2.mul(k, f64x2.splat(LN2_LO)));
  let p = f64x2.splat(C13);
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(C12));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(C11));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(C10));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(C9));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(C8));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(C7));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(C6));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(C5));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(C4));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(C3));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(C2));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0));
  const scale = i64x2.shl(i64x2.add(i64x2.sub(t, i64x2.splat(MAGIC_BITS)), i64x2.splat(1023)), 52);
  return f64x2.mul(p, scale);
}

/** Logistic sigmoid 1 / (1 + exp(-v)). */
// @ts-ignore: decorator
@inline export function sigmoidS(v: f64): f64 {
  return 1.0 / (1.0 + expS(-v));
}
// @ts-ignore: decorator
@inline export function sigmoidV(v: v128): v128 {
  return f64x2.div(f64x2.splat(1.0), f64x2.add(f64x2.splat(1.0), expV(f64x2.neg(v))));
}
/** tanh(a) = 1 - 2 / (exp(2a) + 1). */
// @ts-ignore: decorator
@inline export function tanhS(a: f64): f64 {
  return 1.0 - 2.0 / (expS(2.0 * a) + 1.0);
}
// @ts-ignore: decorator
@inline export function tanhV(a: v128): v128 {
  return f64x2.sub(f64x2.splat(1.0), f64x2.div(f64x2.splat(2.0), f64x2.add(expV(f64x2.mul(f64x2.splat(2.0), a)), f64x2.splat(1.0))));
}

// --- f32 forms for the GRU's gates (f32x4 lanes): the same scheme in single precision,
// clamp to [-87, 87], degree-7 polynomial (within 2 ulp of expf). Every operation rounds to f32,
// which the TypeScript mirror reproduces with Math.fround after each one.
// @ts-ignore: decorator
@inline const LOG2E_F: f32 = 1.44269502;
// @ts-ignore: decorator
@inline const LN2_HI_F: f32 = 0.693145751953125;
// @ts-ignore: decorator
@inline const LN2_LO_F: f32 = 1.428606765330187e-6;
/** 1.5 * 2^23. */
// @ts-ignore: decorator
@inline const MAGIC_F: f32 = 12582912.0;
// @ts-ignore: decorator
@inline const MAGIC_F_BITS: i32 = 0x4b400000;
// @ts-ignore: decorator
@inline const F7: f32 = <f32>(1.0 / 5040.0);
// @ts-ignore: decorator
@inline const F6: f32 = <f32>(1.0 / 720.0);
// @ts-ignore: decorator
@inline const F5: f32 = <f32>(1.0 / 120.0);
// @ts-ignore: decorator
@inline const F4: f32 = <f32>(1.0 / 24.0);
// @ts-ignore: decorator
@inline const F3: f32 = <f32>(1.0 / 6.0);
// @ts-ignore: decorator
@inline const F2: f32 = 0.5;

/** expf, scalar. */
// @ts-ignore: decorator
@inline export function expF(x: f32): f32 {
  x = Mathf.min(Mathf.max(x, -87.0), 87.0);
  const t: f32 = x * LOG2E_F + MAGIC_F;
  const k: f32 = t - MAGIC_F;
  const r: f32 = (x - k * LN2_HI_F) - k * LN2_LO_F;
  let p: f32 = F7;
  p = p * r + F6;
  p = p * r + F5;
  p = p * r + F4;
  p = p * r + F3;
  p = p * r + F2;
  p = p * r + 1.0;
  p = p * r + 1.0;
  return p * reinterpret<f32>((reinterpret<i32>(t) - MAGIC_F_BITS + 127) << 23);
}

/** expf on four f32 lanes, the same operations as expF. */
// @ts-ignore: decorator
@inline export function expF4(x: v128): v128 {
  x = f32x4.min(f32x4.max(x, f32x4.splat(-87.0)), f32x4.splat(87.0));
  const t = f32x4.add(f32x4.mul(x, f32x4.splat(LOG2E_F)), f32x4.splat(MAGIC_F));
  const k = f32x4.sub(t, f32x4.splat(MAGIC_F));
  const r = f32x4.sub(f32x4.sub(x, f32x4.mul(k, f32x4.splat(LN2_HI_F))), f32x4.mul(k, f32x4.splat(LN2_LO_F)));
  let p = f32x4.splat(F7);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(F6));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(F5));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(F4));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(F3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(F2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.0));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.0));
  const scale = i32x4.shl(i32x4.add(i32x4.sub(t, i32x4.splat(MAGIC_F_BITS)), i32x4.splat(127)), 23);
  return f32x4.mul(p, scale);
}

// @ts-ignore: decorator
@inline export function sigmoidF(v: f32): f32 {
  return <f32>1.0 / (<f32>1.0 + expF(-v));
}
// @ts-ignore: decorator
@inline export function sigmoidF4(v: v128): v128 {
  return f32x4.div(f32x4.splat(1.0), f32x4.add(f32x4.splat(1.0), expF4(f32x4.neg(v))));
}
// @ts-ignore: decorator
@inline export function tanhF(a: f32): f32 {
  return <f32>1.0 - <f32>2.0 / (expF(<f32>2.0 * a) + <f32>1.0);
}
// @ts-ignore: decorator
@inline export function tanhF4(a: v128): v128 {
  return f32x4.sub(f32x4.splat(1.0), f32x4.div(f32x4.splat(2.0), f32x4.add(expF4(f32x4.mul(f32x4.splat(2.0), a)), f32x4.splat(1.0))));
}
