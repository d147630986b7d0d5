// One error class per failure mode of the config store, so callers branch with `instanceof`
// (the CLI maps each to its own exit code; the watcher to its own rejection reason).

/** One problem found by validation: the dotted field path and the reason. */
export interface ConfigIssue {
  /** Dotted path of the field, e.g. "pools.0.maxReplicas"; "" for the document root. */
  path: string;
  /** Why the value is wrong, e.g. "must be >= minReplicas (3)". */
  message: string;
}

/** The document does not match the schema (wrong type, out of range, unknown key, cross-field rule). */
export class ConfigValidationError extends Error {
  override name = "ConfigValidationError";
  constructor(
    readonly issues: ConfigIssue[],
    /** Where the document came from ("file a.yaml", "kv revision 7", ...), for the message. */
    readonly source?: string,
  ) {
    super(
      `invalid configuration${source ? ` (${source})` : ""}:\n` +
        issues.map((i) => `  ${i.path || "(root)"}: ${i.message}`).join("\n"),
    );
  }
}

/** The text is not parseable YAML/JSON (or not an object at the top). */
export class ConfigParseError extends Error {
  override name = "ConfigParseError";
  constructor(
    readonly source: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot parse configuration (${source}): ${message}`, options);
  }
}

/** A config file could not be read. */
export class ConfigFileError extends Error {
  override name = "ConfigFileError";
  constructor(
    readonly file: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot read config file ${file}: ${(options?.cause as Error)?.message ?? "unknown error"}`, options);
  }
}

/** Compare-and-set lost: the bucket is no longer at the revision the writer based its change on. */
export class ConfigConflictError extends Error {
  override name = "ConfigConflictError";
  constructor(
    /** Revision the writer expected (0 = expected no document yet). */
    readonly expectedRevision: number,
    /** Revision found in the bucket after the failed write (0 = none). */
    readonly actualRevision: number,
    options?: { cause?: unknown },
  ) {
    super(
      `config changed concurrently: expected revision ${expectedRevision}, bucket is at revision ${actualRevision}; ` +
        `re-read it and apply your change again`,
      options,
    );
  }
}

/** The KV bucket could not be reached or read/written for a reason other than a conflict. */
export class ConfigStoreError extends Error {
  override name = "ConfigStoreError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
