// expf for the GRU's gates, written with IEEE +, -, *, / (each rounded to f32) and bit moves only,
// so the TypeScript mirror (src/engine/fastmath.ts, Math.fround after each operation) computes the
// very same bits (Math.exp of V8 and of the AS standard library may differ in the last bit), and
// so it vectorises: expF4 is the same sequence on f32x4 lanes (no FMA in WASM SIMD; lane results
// equal the scalar ones). Clamp to [-87, 87]; Cody-Waite reduction x = k ln2 + r, |r| <= ln2 / 2;
// degree-7 Taylor polynomial: within 2 ulp of expf.
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
