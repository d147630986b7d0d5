/**
 * The scalar interface of an engine core: exactly the WASM module's exports (assembly/index.ts),
 * also implemented by the TypeScript reference (reference.ts). The facade (engine.ts) drives
 * either one, so tests and benchmarks can swap implementations.
 */
export interface EngineCore {
  /** "wasm" or "reference". */
  readonly kind: string;
  /** The memory that holds every buffer (re-read it: WASM memory may be replaced on growth). */
  buffer(): ArrayBuffer;
  init(
    capacity: number, widthMs: number, latenessMs: number, seasonPoints: number, horizon: number,
    z: number, alpha: number, beta: number, gamma: number, phi: number, alphaMax: number,
    tsThreshold: number, tsSmoothing: number, alphaDecay: number, varSmoothing: number,
    todAlpha: number, expireAfter: number, maxCatchUp: number, ingressCap: number, countsCap: number,
  ): number;
  ingest(n: number): number;
  ingestCounts(n: number): number;
  tick(nowMs: number): number;
  /**
   * The tick in three parts, for tick threads (WASM cores only): tickBegin (main thread; returns
   * the slots to scan), tickChunks on every thread at once (each takes chunks of slots from a
   * shared counter until none is left; thread t's instance writes its sums in its own block),
   * tickEnd(threads) (main thread; returns the records). tick(now) is tickBegin, tickChunks,
   * tickEnd(1).
   */
  tickBegin?(nowMs: number): number;
  tickChunks?(): number;
  tickEnd?(threads: number): number;
  lookup(lo: number, hi: number): number;
  saveGlobals(): void;
  loadGlobals(): void;
  ingressPtr(): number;
  ingressCapacity(): number;
  countsPtr(): number;
  countsCapacity(): number;
  outputPtr(): number;
  statePtr(): number;
  stateBytes(): number;
  slotBytes(): number;
  slotExtOffset(): number;
  indexEntries(): number;
  ringBuckets(): number;
  periodBuckets(): number;
  closedBucket(): number;
  usersTracked(): number;
  heapTop(): number;
  memoryPages(): number;
  hwForecast(slot: number, h: number): number;
  hwUpper(slot: number, h: number): number;
  hwLevel(slot: number): number;
  hwTrend(slot: number): number;
  hwAlpha(slot: number): number;
  hwErrVar(slot: number): number;
  hwObservations(slot: number): number;
  hwSeason(slot: number, i: number): number;
  todRate(slot: number, hour: number): number;
  featCount(slot: number): number;
  featInputTokens(slot: number): number;
  featOutputTokens(slot: number): number;
  featDistinctIps(slot: number): number;
  featDistinctUas(slot: number): number;
  featCv(slot: number): number;
  featErrors(slot: number): number;
  featThrottled(slot: number): number;
  cellRouteBin(slot: number, bucket: number, bin: number): number;
  /** Cumulative requests applied to the user (closed buckets plus open ones); NaN if the slot is free. */
  userRequests(slot: number): number;
  /** Cumulative input tokens applied to the user; NaN if the slot is free. */
  userInputTokens(slot: number): number;
  /** Cumulative output tokens applied to the user; NaN if the slot is free. */
  userOutputTokens(slot: number): number;
  // LSTM-lite and the ensemble (assembly/lstm.ts, assembly/ensemble.ts; see docs/forecasting.md).
  /** Before init: enable (1/0), upper quantile, users trained per closed bucket, learning rate, gradient clip. */
  fcConfigure(enabled: number, quantile: number, trainPerBucket: number, learningRate: number, gradClip: number, minCountPerBucket: number): number;
  fcTrainSteps(): number;
  fcTrainLossSum(): number;
  fcDenseCloses(): number;
  fcCloses(): number;
  /** Address and size of the shared training block (weights, Adam moments, step count; f64). */
  fcTrainBlockPtr(): number;
  fcTrainBlockBytes(): number;
  /** LSTM-lite forecast of the count h buckets after the last closed one (NaN if disabled or no slot). */
  lstmForecast(slot: number, h: number): number;
}
