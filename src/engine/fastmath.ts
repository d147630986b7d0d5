/**
 * The engine's exp for the GRU's gates (assembly/fastmath.ts): IEEE +, -, *, / and bit moves only,
 * so WASM (scalar and SIMD lanes) and this reference produce the same bits. Clamp to
 * [-708, 708], Cody-Waite reduction, degree-13 Taylor polynomial (within 2 ulp of exp).
 */
const LOG2E = 1.4426950408889634;
const LN2_HI = 6.9314718036912381649e-1;
const LN2_LO = 1.90821492927058770002e-10;
const MAGIC = 6755399441055744.0; // 1.5 * 2^52
const C = [1 / 6227020800, 1 / 479001600, 1 / 39916800, 1 / 3628800, 1 / 362880, 1 / 40320, 1 / 5040, 1 / 720, 1 / 120, 1 / 24, 1 / 6, 1 / 2, 1, 1] as const;
const scaleF64 = new Float64Array(1);
const scaleU32 = new Uint32Array(scaleF64.buffer);

export function engineExp(x: number): number {
  x = Math.min(Math.max(x, -708), 708);
  const t = x * LOG2E + MAGIC;
  const k = t - MAGIC;
  const r = x - k * LN2_HI - k * LN2_LO;
  let p = C[0];
  for (let i = 1; i < C.length; i++) p = p * r + C[i];
  // 2^k from its bits (little-endian: high word second).
  scaleU32[0] = 0;
  scaleU32[1] = (k + 1023) << 20;
  return p * scaleF64[0];
}

/** 1 / (1 + exp(-v)) with {@link engineExp}. */
export function engineSigmoid(v: number): number {
  return 1 / (1 + engineExp(-v));
}

/** tanh(a) = 1 - 2 / (exp(2a) + 1) with {@link engineExp}. */
export function engineTanh(a: number): number {
  return 1 - 2 / (engineExp(2 * a) + 1);
}

// f32 forms (assembly/fastmath.ts expF): every operation rounded to f32 with Math.fround.
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
