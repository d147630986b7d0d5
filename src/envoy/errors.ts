// One error class per failure mode of the Envoy rate-limit service.

/** The .proto files of the RLS API cannot be found or parsed. */
export class RlsProtoLoadError extends Error {
  override name = "RlsProtoLoadError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The gRPC server could not bind its address. */
export class RlsListenError extends Error {
  override name = "RlsListenError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * A RateLimitRequest that is not acceptable; `field` is the path of the offending field
 * (e.g. "descriptors[0].entries[1].key"), answered as gRPC INVALID_ARGUMENT.
 */
export class RlsInvalidRequestError extends Error {
  override name = "RlsInvalidRequestError";
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${field}: ${problem}`);
  }
}

/** A limiter option that is not usable (bad window, missing plan). */
export class LimiterConfigError extends Error {
  override name = "LimiterConfigError";
  constructor(message: string) {
    super(message);
  }
}

/** The Redis-backed limiter failed to reach or use Redis. */
export class RedisLimiterError extends Error {
  override name = "RedisLimiterError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
