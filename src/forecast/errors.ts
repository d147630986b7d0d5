/** Errors of the forecast component, one class per failure mode; callers use `instanceof`. */

/** A trace file could not be read or has a malformed line (the message names file and line). */
export class TraceFormatError extends Error {
  override name = "TraceFormatError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** An option of the evaluation or training (clients, horizons, split, quantile, models) is invalid. */
export class ForecastOptionError extends Error {
  override name = "ForecastOptionError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A serialised LSTM-lite weight blob is truncated, has the wrong magic or a different shape (defined with the weights). */
export { WeightsFormatError } from "../engine/gru.ts";
