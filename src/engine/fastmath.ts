/**
 * The engine's expf for the GRU's gates (assembly/fastmath.ts): IEEE operations each rounded to
 * f32 (Math.fround) and bit moves only, so WASM (scalar and f32x4 lanes) and this reference
 * produce the same bits. Clamp to [-87, 87], Cody-Waite reduction, degree-7 Taylor polynomial.
 */
const fr = Math.fround;
const LOG2E_F = fr(1.44269502);
const LN2_HI_F = fr(0.693145751953125);
const LN2_LO_F = fr(1.428606765330187e-6);
const MAGIC_F = 12582912; // 1.5 * 2^23, exact in f32
const CF = [fr(1 / 5040), fr(1 / 720), fr(1 / 120), fr(1 / 24), fr(1 / 6), 0.5, 1, 1] as const;
const scaleF32 = new Float32Array(1);
const scaleI32 = new Int32Array(scaleF32.buffer);

export function engineExpF(x: number): number {
  x = Math.min(Math.max(x, -87), 87);
  const t = fr(fr(x * LOG2E_F) + MAGIC_F);
  const k = fr(t - MAGIC_F);
  const r = fr(fr(x - fr(k * LN2_HI_F)) - fr(k * LN2_LO_F));
  let p = CF[0];
  for (let i = 1; i < CF.length; i++) p = fr(fr(p * r) + CF[i]);
  scaleI32[0] = (k + 127) << 23;
  return fr(p * scaleF32[0]);
}

export function engineSigmoidF(v: number): number {
  return fr(1 / fr(1 + engineExpF(-v)));
}

export function engineTanhF(a: number): number {
  return fr(1 - fr(2 / fr(engineExpF(fr(2 * a)) + 1)));
}
