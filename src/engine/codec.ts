/** TypeScript twin of assembly/codec.ts: the same 16-bit encodings, bit for bit. */
const U16_BIAS = 999 << 10;
const f = new Float64Array(1);
const w = new Uint32Array(f.buffer);

/** Non-negative value as a 16-bit float (6-bit exponent 2^-24..2^39, 10-bit mantissa); <= 0 / NaN -> 0; saturating. */
export function encU16(v: number): number {
  if (!(v > 0)) return 0;
  f[0] = v;
  const c = ((w[1] + 512) >>> 10) - U16_BIAS;
  return c < 1 ? 0 : c > 65535 ? 65535 : c;
}

export function decU16(c: number): number {
  if (c === 0) return 0;
  w[0] = 0;
  w[1] = (c + U16_BIAS) << 10;
  return f[0];
}

/** Log-scale value in [0, 32) as fixed point, steps of 1/2048, rounded half up, clamped. */
export function encLog(v: number): number {
  const q = Math.floor(v * 2048 + 0.5);
  return !(q > 0) ? 0 : q > 65535 ? 65535 : q;
}

export function decLog(c: number): number {
  return c * (1 / 2048);
}
