// expf for the GRU's gates, written with IEEE +, -, *, / (each rounded to f32) and bit moves only,
// so the TypeScript mirror (src/engine/fastmath.ts, Math.fround after each operation) computes the
// very same bits (Math.exp of V8 and of the AS standard library may differ in the last bit), and
// so it vectorises: expF4 is the same sequence on f32x4 lanes (no FMA in WASM SIMD; lane results
// equal the scalar ones). Clamp to [-87, 87]; Cody-Waite reduction x = k ln2 + r, |r| <= ln2 / 2;
// degree-7 Taylor polynomial in Estrin's form, ((1 + r) + (F2 + F3 r) r^2) + ((F4 + F5 r) + (F6 +
// F7 r) r^2) r^4: 6 dependent operations instead of Horner's 14 (the GRU step is latency-bound,
// and two expf are on its critical path: about 25 % of the step measured); within 2 ulp of expf.
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
  const r2: f32 = r * r;
  const r4: f32 = r2 * r2;
  const p: f32 = (((<f32>1.0 + r) + (F2 + F3 * r) * r2) + ((F4 + F5 * r) + (F6 + F7 * r) * r2) * r4);
  return p * reinterpret<f32>((reinterpret<i32>(t) - MAGIC_F_BITS + 127) << 23);
}

/** expf on four f32 lanes, the same operations as expF. */
// @ts-ignore: decorator
@inline export function expF4(x: v128): v128 {
  // pmax/pmin (one instruction each on x64; min/max take several for their NaN and -0 rules): with
  // x first a NaN lane stays NaN, as with Mathf.max/min, and +-0 are clamped to themselves.
  x = f32x4.pmin(f32x4.pmax(x, f32x4.splat(-87.0)), f32x4.splat(87.0));
  const t = f32x4.add(f32x4.mul(x, f32x4.splat(LOG2E_F)), f32x4.splat(MAGIC_F));
  const k = f32x4.sub(t, f32x4.splat(MAGIC_F));
  const r = f32x4.sub(f32x4.sub(x, f32x4.mul(k, f32x4.splat(LN2_HI_F))), f32x4.mul(k, f32x4.splat(LN2_LO_F)));
  const r2 = f32x4.mul(r, r);
  const r4 = f32x4.mul(r2, r2);
  const q0 = f32x4.add(f32x4.splat(1.0), r);
  const q1 = f32x4.add(f32x4.splat(F2), f32x4.mul(f32x4.splat(F3), r));
  const q2 = f32x4.add(f32x4.splat(F4), f32x4.mul(f32x4.splat(F5), r));
  const q3 = f32x4.add(f32x4.splat(F6), f32x4.mul(f32x4.splat(F7), r));
  const p = f32x4.add(f32x4.add(q0, f32x4.mul(q1, r2)), f32x4.mul(f32x4.add(q2, f32x4.mul(q3, r2)), r4));
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

// log1p and expm1 in f64 for LSTM-lite's level, inputs and back-transform (one call each per
// closed bucket and user), written like expF with IEEE +, -, *, / and bit moves only, so the
// mirror (src/engine/fastmath.ts engineLog1p / engineExpm1) computes the same bits, and inlined
// instead of the standard library's general versions (~15-30 ns a call, and V8's Math.expm1 and
// the AS one could differ in the last bit).

// musl's log1p polynomial (log(1 + f) = f - hfsq + s (hfsq + R(s^2)), s = f / (2 + f)).
// @ts-ignore: decorator
@inline const LG1: f64 = 6.666666666666735130e-01;
// @ts-ignore: decorator
@inline const LG2: f64 = 3.999999999940941908e-01;
// @ts-ignore: decorator
@inline const LG3: f64 = 2.857142874366239149e-01;
// @ts-ignore: decorator
@inline const LG4: f64 = 2.222219843214978396e-01;
// @ts-ignore: decorator
@inline const LG5: f64 = 1.818357216161805012e-01;
// @ts-ignore: decorator
@inline const LG6: f64 = 1.531383769920937332e-01;
// @ts-ignore: decorator
@inline const LG7: f64 = 1.479819860511658591e-01;
/** ln 2 split: the high part has 32 mantissa bits, so k x LN2_HI is exact for |k| < 2^20. */
// @ts-ignore: decorator
@inline const LN2_HI: f64 = 6.93147180369123816490e-01;
// @ts-ignore: decorator
@inline const LN2_LO: f64 = 1.90821492927058770002e-10;

/**
 * log1p(x) for x >= 0 (NaN -> NaN, +Infinity -> +Infinity; negative x is not supported). Below
 * sqrt(2) - 1 the polynomial takes x itself (exact argument); above, 1 + x = 2^k m with m in
 * [sqrt(2)/2, sqrt(2)) and f = m - 1, dropping musl's correction for the rounding of 1 + x (at
 * most 2^-53 absolute against a result >= 0.34). Within about 2 ulp of log1p.
 */
// @ts-ignore: decorator
@inline export function log1pD(x: f64): f64 {
  if (!(x < Infinity)) return x;
  const u = 1.0 + x;
  const hu = <u32>(reinterpret<u64>(u) >> 32) + (0x3ff00000 - 0x3fe6a09e);
  const big = x >= 0.41421356237309503; // 1 + x >= sqrt(2)
  const k = big ? <i32>(hu >> 20) - 0x3ff : 0;
  const m = reinterpret<f64>((<u64>((hu & 0x000fffff) + 0x3fe6a09e) << 32) | (reinterpret<u64>(u) & 0xffffffff));
  const f = big ? m - 1.0 : x;
  const hfsq = 0.5 * f * f;
  const s = f / (2.0 + f);
  const z = s * s;
  const w = z * z;
  const t1 = w * (LG2 + w * (LG4 + w * LG6));
  const t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)));
  const dk = <f64>k;
  return s * (hfsq + (t2 + t1)) + dk * LN2_LO - hfsq + f + dk * LN2_HI;
}

// @ts-ignore: decorator
@inline const INV_LN2: f64 = 1.4426950408889634;
/** 1.5 * 2^52: x + MAGIC_D rounds x to an integer held in the low mantissa bits. */
// @ts-ignore: decorator
@inline const MAGIC_D: f64 = 6755399441055744.0;
// Taylor coefficients 1/n!, n = 2..13 (the f64 nearest each).
// @ts-ignore: decorator
@inline const E2: f64 = 0.5;
// @ts-ignore: decorator
@inline const E3: f64 = 0.16666666666666666;
// @ts-ignore: decorator
@inline const E4: f64 = 0.041666666666666664;
// @ts-ignore: decorator
@inline const E5: f64 = 0.0083333333333333332;
// @ts-ignore: decorator
@inline const E6: f64 = 0.0013888888888888889;
// @ts-ignore: decorator
@inline const E7: f64 = 0.00019841269841269841;
// @ts-ignore: decorator
@inline const E8: f64 = 0.000024801587301587302;
// @ts-ignore: decorator
@inline const E9: f64 = 0.0000027557319223985893;
// @ts-ignore: decorator
@inline const E10: f64 = 2.7557319223985888e-7;
// @ts-ignore: decorator
@inline const E11: f64 = 2.5052108385441720e-8;
// @ts-ignore: decorator
@inline const E12: f64 = 2.0876756987868100e-9;
// @ts-ignore: decorator
@inline const E13: f64 = 1.6059043836821613e-10;

/**
 * expm1(x): x = k ln2 + r (|r| <= ln2 / 2, Cody-Waite), expm1(r) = r + r^2 q(r) with q the Taylor
 * polynomial of degree 11 (terms to r^13, truncation < 2e-17 relative) in Estrin's form, then
 * 2^k expm1(r) + (2^k - 1). Below -45 the result is -1; above 709 +Infinity (the standard
 * function overflows at 709.78); NaN -> NaN. Within about 2 ulp of expm1.
 */
// @ts-ignore: decorator
@inline export function expm1D(x: f64): f64 {
  if (!(x <= 709.0)) return x + Infinity;
  x = Math.max(x, -45.0);
  const t = x * INV_LN2 + MAGIC_D;
  const kf = t - MAGIC_D;
  const r = (x - kf * LN2_HI) - kf * LN2_LO;
  const r2 = r * r;
  const r4 = r2 * r2;
  const b0 = (E2 + E3 * r) + (E4 + E5 * r) * r2;
  const b1 = (E6 + E7 * r) + (E8 + E9 * r) * r2;
  const b2 = (E10 + E11 * r) + (E12 + E13 * r) * r2;
  const q = (b0 + b1 * r4) + b2 * (r4 * r4);
  const p = r + r2 * q;
  const scale = reinterpret<f64>(<u64>(<i32>reinterpret<u64>(t) + 1023) << 52);
  return scale * p + (scale - 1.0);
}

/** expm1D on the two lanes of an f64x2: the same operations per lane (a lane above 709 or NaN: both lanes through expm1D). */
// @ts-ignore: decorator
@inline export function expm1D2(x: v128): v128 {
  if (!i64x2.all_true(f64x2.le(x, f64x2.splat(709.0)))) {
    return f64x2.replace_lane(f64x2.splat(expm1D(f64x2.extract_lane(x, 0))), 1, expm1D(f64x2.extract_lane(x, 1)));
  }
  x = f64x2.pmax(x, f64x2.splat(-45.0)); // as in expF4: the lanes are not NaN here
  const t = f64x2.add(f64x2.mul(x, f64x2.splat(INV_LN2)), f64x2.splat(MAGIC_D));
  const kf = f64x2.sub(t, f64x2.splat(MAGIC_D));
  const r = f64x2.sub(f64x2.sub(x, f64x2.mul(kf, f64x2.splat(LN2_HI))), f64x2.mul(kf, f64x2.splat(LN2_LO)));
  const r2 = f64x2.mul(r, r);
  const r4 = f64x2.mul(r2, r2);
  const b0 = f64x2.add(f64x2.add(f64x2.splat(E2), f64x2.mul(f64x2.splat(E3), r)), f64x2.mul(f64x2.add(f64x2.splat(E4), f64x2.mul(f64x2.splat(E5), r)), r2));
  const b1 = f64x2.add(f64x2.add(f64x2.splat(E6), f64x2.mul(f64x2.splat(E7), r)), f64x2.mul(f64x2.add(f64x2.splat(E8), f64x2.mul(f64x2.splat(E9), r)), r2));
  const b2 = f64x2.add(f64x2.add(f64x2.splat(E10), f64x2.mul(f64x2.splat(E11), r)), f64x2.mul(f64x2.add(f64x2.splat(E12), f64x2.mul(f64x2.splat(E13), r)), r2));
  const q = f64x2.add(f64x2.add(b0, f64x2.mul(b1, r4)), f64x2.mul(b2, f64x2.mul(r4, r4)));
  const p = f64x2.add(r, f64x2.mul(r2, q));
  const scale = i64x2.shl(i64x2.add(t, i64x2.splat(1023)), 52);
  return f64x2.add(f64x2.mul(scale, p), f64x2.sub(scale, f64x2.splat(1.0)));
}
