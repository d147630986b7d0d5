// Byte layouts of the buffers that cross the JS/WASM boundary and of the state header blocks.
// Mirrors src/engine/layout.ts (event and forecast records) and src/engine/regions.ts (the rest).
// Change one side only together with the other: the differential tests compare both byte for byte.

// --- event record (48 bytes), src/engine/layout.ts EventField
export const EVENT_BYTES: u32 = 48;
export const EV_HASH_LO: u32 = 0;
export const EV_HASH_HI: u32 = 4;
export const EV_TIME: u32 = 8;
export const EV_IN_TOK: u32 = 16;
export const EV_OUT_TOK: u32 = 20;
export const EV_ROUTE: u32 = 24;
export const EV_IP: u32 = 28;
export const EV_UA: u32 = 32;
export const EV_LATENCY: u32 = 36;
export const EV_BYTES: u32 = 40;
export const EV_STATUS: u32 = 44;
export const EV_FLAGS: u32 = 46;
export const FLAG_THROTTLED: u32 = 1;
export const FLAG_ERROR: u32 = 2;

// --- aggregate ("counts") record (40 bytes) for the cold replay path
export const COUNTS_BYTES: u32 = 40;
// u32 hashLo @0, u32 hashHi @4, f64 timeMs @8, f64 requests @16, f64 inputTokens @24, f64 outputTokens @32

// --- forecast output record (32 bytes), src/engine/layout.ts ForecastField
export const FORECAST_BYTES: u32 = 32;

// --- state region: params block (24 f64) then globals block (32 f64), then index, slab
export const PARAMS_BYTES: u32 = 192;
export const GLOBALS_BYTES: u32 = 256;
export const LAYOUT_VERSION: f64 = 7;

// params block: f64 at index * 8
export const P_VERSION: u32 = 0;
export const P_CAPACITY: u32 = 1;
export const P_INDEX_ENTRIES: u32 = 2;
export const P_SLOT_BYTES: u32 = 3;
export const P_WIDTH_MS: u32 = 4;
export const P_LATENESS_MS: u32 = 5;
export const P_RING: u32 = 6;
export const P_SEASON_POINTS: u32 = 7;
export const P_PERIOD_BUCKETS: u32 = 8;
export const P_HORIZON: u32 = 9;
export const P_Z: u32 = 10;
export const P_ALPHA: u32 = 11;
export const P_BETA: u32 = 12;
export const P_GAMMA: u32 = 13;
export const P_PHI: u32 = 14;
export const P_ALPHA_MAX: u32 = 15;
export const P_TS_THRESHOLD: u32 = 16;
export const P_TS_SMOOTHING: u32 = 17;
export const P_ALPHA_DECAY: u32 = 18;
export const P_VAR_SMOOTHING: u32 = 19;
export const P_TOD_ALPHA: u32 = 20;
export const P_EXPIRE_AFTER: u32 = 21;
export const P_MAX_CATCH_UP: u32 = 22;

// globals block: f64 at index * 8
export const G_INITIALIZED: u32 = 0;
export const G_CLOSED: u32 = 1;
export const G_USED: u32 = 2;
export const G_FREE_HEAD: u32 = 3;
export const G_LRU_HEAD: u32 = 4;
export const G_LRU_TAIL: u32 = 5;
export const G_TRACKED: u32 = 6;
export const G_APPLIED: u32 = 7;
export const G_INVALID: u32 = 8;
export const G_LATE: u32 = 9;
export const G_EARLY: u32 = 10;
export const G_EVICTIONS: u32 = 11;
export const G_EXPIRATIONS: u32 = 12;
export const G_BUCKETS_CLOSED: u32 = 13;
export const G_TICKS: u32 = 14;
export const G_COUNTS_APPLIED: u32 = 15;
export const G_SKIPPED_BUCKETS: u32 = 16;

/** "No slot" / empty marker in the LRU and free lists, and an empty ring cell's bucket id. */
export const NIL: u32 = 0xffffffff;
/** Buckets at or above this are rejected as invalid (keeps bucket arithmetic inside u32). */
export const MAX_BUCKET: f64 = 4294967040.0;
