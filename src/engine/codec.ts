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

const I16_BIAS = 1008 << 10;

/** Signed value as a 16-bit float (sign, 5-bit exponent 2^-15..2^16, 10-bit mantissa rounded half up); |v| <= 2^-15 / NaN -> 0; saturating at +-131 008. */
export function encI16(v: number): number {
  const a = Math.abs(v);
  if (!(a > 0)) return 0;
  f[0] = a;
  const c = ((w[1] + 512) >>> 10) - I16_BIAS;
  const m = c < 1 ? 0 : c > 32767 ? 32767 : c;
  return m === 0 ? 0 : v < 0 ? m | 0x8000 : m;
}

export function decI16(c: number): number {
  const m = c & 0x7fff;
  if (m === 0) return 0;
  w[0] = 0;
  w[1] = (m + I16_BIAS) << 10;
  return c & 0x8000 ? -f[0] : f[0];
}

const U8_BIAS = (1027 << 4) - 16;

/** Non-negative count in a byte: 0..15 exact, then 4-bit-mantissa float (integers to 31 exact, relative error <= 2^-5), saturating at code 255 = 507 904. */
export function encU8(v: number): number {
  if (!(v > 0)) return 0;
  if (v < 16) return Math.floor(v + 0.5);
  f[0] = v;
  const c = ((w[1] + 0x8000) >>> 16) - U8_BIAS;
  return c > 255 ? 255 : c;
}

export function decU8(c: number): number {
  if (c < 16) return c;
  w[0] = 0;
  w[1] = (c + U8_BIAS) << 16;
  return f[0];
}
