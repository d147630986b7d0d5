// The central configuration store: schema and defaults, layered loading, the KV-backed store
// with compare-and-set, and the live watcher. The public surface is listed here; helpers inside
// the files (issue mapping, object tests) stay internal.
export {
  ConfigConflictError, ConfigFileError, ConfigParseError, ConfigStoreError, ConfigValidationError, type ConfigIssue,
} from "./errors.ts";
export {
  CONFIG_APPLY_MODES, DEFAULT_CHECKPOINT_INTERVAL_MS, DEFAULT_CONFIG, DEFAULT_LEASE_TTL_MS, DEFAULT_REPLICAS,
  DEFAULT_TELEMETRY_MAX_AGE_MS, DEFAULT_TELEMETRY_MAX_BYTES, DEFAULT_TICK_INTERVAL_MS,
  ForesightConfigSchema, applyModeOf, type ConfigApplyMode, type ForesightConfig, type ForesightConfigInput, type PoolConfig,
} from "./schema.ts";
export { parseConfigText, validateConfig } from "./validate.ts";
export { deepMerge, diffConfigs, getPath, leafPaths, type ConfigChange } from "./merge.ts";
export {
  CONFIG_ENV_VARS, envLayer, loadConfig, readConfigFile, type ConfigLayer, type LoadConfigOptions, type LoadedConfig,
} from "./load.ts";
export {
  ConfigStore, DEFAULT_CONFIG_HISTORY, DEFAULT_CONFIG_KEY, decodeEntry,
  type ConfigRevision, type ConfigStoreOptions, type StoredConfig,
} from "./store.ts";
export {
  ConfigWatcher, DEFAULT_CHANGE_HANDLER_WARN_MS,
  type ConfigRejectReason, type ConfigRejection, type ConfigUpdate, type ConfigWatcherOptions,
} from "./watch.ts";
