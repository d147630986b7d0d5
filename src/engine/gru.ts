/**
 * LSTM-lite's shared part, owned by the engine: the GRU's shapes and flat parameter layout, the
 * weights and their "LSTL" blob format, and the design forms of one step and the output layer
 * (the offline trainer and the harness model in src/forecast/lstm.ts use these; the engine's
 * WASM form and its TypeScript mirror are assembly/lstm.ts and src/engine/fc-mirror.ts).
 * Imports run one way: src/forecast uses this module, the engine never imports src/forecast.
 */
import { xorshift32 } from "../util/random.ts";

/** A serialised LSTM-lite weight blob is truncated, has the wrong magic or a different shape. */
export class WeightsFormatError extends Error {
  override name = "WeightsFormatError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Hidden units (the per-user state is this many floats). */
export const LSTM_HIDDEN = 8;
/** Input features per bucket. */
export const LSTM_INPUTS = 9;
/** Horizons the output layer predicts, 1..LSTM_MAX_HORIZON buckets. */
export const LSTM_MAX_HORIZON = 6;
/** Per-bucket EW factor of the user's level (mean log1p count). */
export const LSTM_LEVEL_ALPHA = 0.05;
/** Per-day EW factor of the daily log profile. */
export const LSTM_PROFILE_GAMMA = 0.3;

const H = LSTM_HIDDEN;
const X = LSTM_INPUTS;
const O = LSTM_MAX_HORIZON;
// Parameter layout (flat): three gates (z, r, n) × (W: H×X, U: H×H, b: H), then extra bias for
// the candidate's recurrent term (bu: H), then the output layer (Wo: O×H, bo: O).
const GATE = H * X + H * H + H;
const OFF_Z = 0;
const OFF_R = GATE;
const OFF_N = 2 * GATE;
const OFF_BU = 3 * GATE;
const OFF_WO = OFF_BU + H;
const OFF_BO = OFF_WO + O * H;
// Skip connections from the current and the seasonal input to every output (init: naive), so
// the recurrent part learns a correction to "last value" rather than the whole forecast.
const OFF_SKIP = OFF_BO + O;
/** Offsets of the parameter groups in the flat layout (for the trainer's gradient). */
export const GruOffset = Object.freeze({ z: OFF_Z, r: OFF_R, n: OFF_N, bu: OFF_BU, wo: OFF_WO, bo: OFF_BO, skip: OFF_SKIP });
/** Number of shared parameters. */
export const LSTM_PARAM_COUNT = OFF_SKIP + 2 * O;

/** Shared weights of LSTM-lite. */
export class LstmWeights {
  constructor(readonly params: Float64Array = new Float64Array(LSTM_PARAM_COUNT)) {
    if (params.length !== LSTM_PARAM_COUNT) throw new WeightsFormatError(`expected ${LSTM_PARAM_COUNT} parameters, got ${params.length}`);
  }
  /** Small deterministic random initialisation (xorshift seeded), update gate biased to keep state. */
  static init(seed = 1): LstmWeights {
    const p = new Float64Array(LSTM_PARAM_COUNT);
    const uniform = xorshift32(seed);
    const rnd = () => uniform() - 0.5;
    for (let i = 0; i < OFF_BU; i++) p[i] = rnd() * 0.6;
    for (let i = 0; i < H; i++) {
      p[OFF_Z + H * X + H * H + i] = 1; // z bias: start by remembering
      p[OFF_R + H * X + H * H + i] = 0;
      p[OFF_N + H * X + H * H + i] = 0;
    }
    for (let i = OFF_WO; i < OFF_BO; i++) p[i] = rnd() * 0.2;
    for (let o = 0; o < O; o++) p[OFF_SKIP + o] = 1;
    return new LstmWeights(p);
  }

  /** Serialises as "LSTL" magic, u32 version 1, u32 hidden, u32 inputs, u32 horizons, f32 × params. */
  toBytes(): Uint8Array {
    const buf = new ArrayBuffer(20 + 4 * LSTM_PARAM_COUNT);
    const dv = new DataView(buf);
    dv.setUint32(0, 0x4c54534c, true); // "LSTL"
    dv.setUint32(4, 1, true);
    dv.setUint32(8, H, true);
    dv.setUint32(12, X, true);
    dv.setUint32(16, O, true);
    for (let i = 0; i < LSTM_PARAM_COUNT; i++) dv.setFloat32(20 + 4 * i, this.params[i], true);
    return new Uint8Array(buf);
  }

  static fromBytes(bytes: Uint8Array): LstmWeights {
    if (bytes.length < 20) throw new WeightsFormatError(`weights blob too short (${bytes.length} bytes)`);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (dv.getUint32(0, true) !== 0x4c54534c) throw new WeightsFormatError("weights blob lacks the LSTL magic");
    const v = dv.getUint32(4, true);
    const shape = [dv.getUint32(8, true), dv.getUint32(12, true), dv.getUint32(16, true)];
    if (v !== 1 || shape[0] !== H || shape[1] !== X || shape[2] !== O)
      throw new WeightsFormatError(`weights blob version ${v} shape ${shape.join("x")} != expected 1 ${H}x${X}x${O}`);
    if (bytes.length !== 20 + 4 * LSTM_PARAM_COUNT) throw new WeightsFormatError(`weights blob is ${bytes.length} bytes, expected ${20 + 4 * LSTM_PARAM_COUNT}`);
    const p = new Float64Array(LSTM_PARAM_COUNT);
    for (let i = 0; i < LSTM_PARAM_COUNT; i++) p[i] = dv.getFloat32(20 + 4 * i, true);
    for (const x of p) if (!Number.isFinite(x)) throw new WeightsFormatError("weights blob holds a non-finite parameter");
    return new LstmWeights(p);
  }
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/**
 * One GRU step: h' from h and x. When `cache` is given, stores z, r, n and (U_n h + b_u) for BPTT.
 * Pure arithmetic, no allocation: the WASM port mirrors this loop order exactly.
 */
export function gruStep(p: Float64Array, h: ArrayLike<number>, x: Float64Array, out: Float64Array, cache?: Float64Array): void {
  for (let i = 0; i < H; i++) {
    let az = p[OFF_Z + H * X + H * H + i];
    let ar = p[OFF_R + H * X + H * H + i];
    let an = p[OFF_N + H * X + H * H + i];
    let un = p[OFF_BU + i];
    for (let k = 0; k < X; k++) {
      az += p[OFF_Z + i * X + k] * x[k];
      ar += p[OFF_R + i * X + k] * x[k];
      an += p[OFF_N + i * X + k] * x[k];
    }
    for (let k = 0; k < H; k++) {
      az += p[OFF_Z + H * X + i * H + k] * h[k];
      ar += p[OFF_R + H * X + i * H + k] * h[k];
      un += p[OFF_N + H * X + i * H + k] * h[k];
    }
    const z = sigmoid(az);
    const r = sigmoid(ar);
    const n = Math.tanh(an + r * un);
    out[i] = (1 - z) * n + z * h[i];
    if (cache) {
      cache[i] = z;
      cache[H + i] = r;
      cache[2 * H + i] = n;
      cache[3 * H + i] = un;
    }
  }
}

/** Output layer: predicted log1p(count[t+h]) − L for h = 1..O into `y`. */
export function gruOutput(p: Float64Array, h: ArrayLike<number>, x: Float64Array, y: Float64Array): void {
  for (let o = 0; o < O; o++) {
    let v = p[OFF_BO + o] + p[OFF_SKIP + o] * x[0] + p[OFF_SKIP + O + o] * x[1];
    for (let k = 0; k < H; k++) v += p[OFF_WO + o * H + k] * h[k];
    y[o] = v;
  }
}

