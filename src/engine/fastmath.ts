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
