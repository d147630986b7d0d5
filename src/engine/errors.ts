/** Errors of the engine facade: one class per failure mode, `name` set, `cause` kept. */

/** An option is missing its constraints (message names the option, the value and the rule). */
export class EngineOptionsError extends RangeError {
  override name = "EngineOptionsError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** The WASM module could not be found, compiled, instantiated or initialised. */
export class EngineLoadError extends Error {
  override name = "EngineLoadError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** A snapshot is malformed or was taken with incompatible parameters. */
export class SnapshotError extends Error {
  override name = "SnapshotError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** The WASM module aborted (an AssemblyScript assertion; only the debug build checks them). */
export class EngineTrapError extends Error {
  override name = "EngineTrapError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** A call argument is out of range (e.g. a non-finite tick time, a record count above capacity). */
export class EngineInputError extends RangeError {
  override name = "EngineInputError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}
