/**
 * The engine's expf for the GRU's gates (assembly/fastmath.ts): IEEE operations each rounded to
 * f32 (Math.fround) and bit moves only, so WASM (scalar and f32x4 lanes) and this reference
 * produce the same bits. Clamp to [-87, 87], Cody-Waite reduction, degree-7 Taylor polynomial in
 * Estrin's form (the same grouping as there).
 */
const fr = Math.fround;
const LOG2E_F = fr(1.44269502);
const LN2_HI_F = fr(0.693145751953125);
const LN2_LO_F = fr(1.428606765330187e-6);
const MAGIC_F = 12582912; // 1.5 * 2^23, exact in f32
const F7 = fr(1 / 5040), F6 = fr(1 / 720), F5 = fr(1 / 120), F4 = fr(1 / 24), F3 = fr(1 / 6), F2 = 0.5;
const scaleF32 = new Float32Array(1);
const scaleI32 = new Int32Array(scaleF32.buffer);

export function engineExpF(x: number): number {
  x = Math.min(Math.max(x, -87), 87);
  const t = fr(fr(x * LOG2E_F) + MAGIC_F);
  const k = fr(t - MAGIC_F);
  const r = fr(fr(x - fr(k * LN2_HI_F)) - fr(k * LN2_LO_F));
  const r2 = fr(r * r);
  const r4 = fr(r2 * r2);
  const q0 = fr(1 + r);
  const q1 = fr(F2 + fr(F3 * r));
  const q2 = fr(F4 + fr(F5 * r));
  const q3 = fr(F6 + fr(F7 * r));
  const p = fr(fr(q0 + fr(q1 * r2)) + fr(fr(q2 + fr(q3 * r2)) * r4));
  scaleI32[0] = (k + 127) << 23;
  return fr(p * scaleF32[0]);
}

export function engineSigmoidF(v: number): number {
  return fr(1 / fr(1 + engineExpF(-v)));
}

export function engineTanhF(a: number): number {
  return fr(1 - fr(2 / fr(engineExpF(fr(2 * a)) + 1)));
}

// engineLog1p / engineExpm1: assembly/fastmath.ts log1pD / expm1D, the same f64 operations in the
// same order and the same bit moves, so WASM and the reference compute the same bits.
const LG1 = 6.666666666666735130e-01, LG2 = 3.999999999940941908e-01, LG3 = 2.857142874366239149e-01;
const LG4 = 2.222219843214978396e-01, LG5 = 1.818357216161805012e-01, LG6 = 1.531383769920937332e-01;
const LG7 = 1.479819860511658591e-01;
const LN2_HI = 6.93147180369123816490e-01, LN2_LO = 1.90821492927058770002e-10;
const bitsF64 = new Float64Array(1);
const bitsU32 = new Uint32Array(bitsF64.buffer);
const bitsI32 = new Int32Array(bitsF64.buffer);

/** log1p(x) for x >= 0 (NaN -> NaN, +Infinity -> +Infinity), as assembly/fastmath.ts log1pD. */
export function engineLog1p(x: number): number {
  if (!(x < Infinity)) return x;
  const u = 1 + x;
  bitsF64[0] = u;
  const hu = (bitsU32[1] + (0x3ff00000 - 0x3fe6a09e)) >>> 0;
  const big = x >= 0.41421356237309503;
  const k = big ? (hu >>> 20) - 0x3ff : 0;
  bitsU32[1] = (hu & 0x000fffff) + 0x3fe6a09e;
  const f = big ? bitsF64[0] - 1 : x;
  const hfsq = 0.5 * f * f;
  const s = f / (2 + f);
  const z = s * s;
  const w = z * z;
  const t1 = w * (LG2 + w * (LG4 + w * LG6));
  const t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)));
  return s * (hfsq + (t2 + t1)) + k * LN2_LO - hfsq + f + k * LN2_HI;
}

const INV_LN2 = 1.4426950408889634, MAGIC_D = 6755399441055744;
const E2 = 0.5, E3 = 0.16666666666666666, E4 = 0.041666666666666664, E5 = 0.0083333333333333332;
const E6 = 0.0013888888888888889, E7 = 0.00019841269841269841, E8 = 0.000024801587301587302;
const E9 = 0.0000027557319223985893, E10 = 2.7557319223985888e-7, E11 = 2.5052108385441720e-8;
const E12 = 2.0876756987868100e-9, E13 = 1.6059043836821613e-10;

/** expm1(x) as assembly/fastmath.ts expm1D (-1 below -45, +Infinity above 709, NaN -> NaN). */
export function engineExpm1(x: number): number {
  if (!(x <= 709)) return x + Infinity;
  x = Math.max(x, -45);
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
  bitsF64[0] = t;
  const k = bitsI32[0];
  bitsU32[0] = 0;
  bitsU32[1] = (k + 1023) << 20;
  const scale = bitsF64[0];
  return scale * p + (scale - 1);
}
