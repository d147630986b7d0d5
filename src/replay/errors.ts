/** Errors of the replay harness, one class per failure mode; callers use `instanceof`. */

/** The trace cannot be read, lacks a column, or has a row the traffic model cannot use (message names file and line). */
export class ReplayDataError extends Error {
  override name = "ReplayDataError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A replay option is out of range or inconsistent (message names the option and the rule). */
export class ReplayOptionError extends Error {
  override name = "ReplayOptionError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
