/** Loading the engine's WASM module and adapting its exports to the EngineCore interface. */
import { packageRootOf } from "../util/package-root.ts";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { EngineCore } from "./core.ts";
import { EngineLoadError, EngineTrapError } from "./errors.ts";

/** The package root: the nearest directory above this module holding package.json (works from src/ and dist/). */
export function packageRoot(from: string = import.meta.url): string {
  return packageRootOf(from);
}

/** Path of the release (build/engine.wasm) or debug (build/engine.debug.wasm) module. */
export function wasmPath(debug: boolean): string {
  return join(packageRoot(), "build", debug ? "engine.debug.wasm" : "engine.wasm");
}

// tsconfig's lib has no DOM/WebAssembly typings: declare the few parts used here.
export interface WasmModule { readonly __module: unique symbol }
export interface WasmMemory { readonly buffer: ArrayBuffer }
interface WasmInstance { readonly exports: Record<string, unknown> }
interface WasmApi {
  compile(bytes: Uint8Array): Promise<WasmModule>;
  instantiate(module: WasmModule, imports: Record<string, Record<string, unknown>>): Promise<WasmInstance>;
  Memory: new (d: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
  Module: { imports(m: WasmModule): { module: string; name: string; kind: string }[] };
}
const WebAssembly = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

const compiled = new Map<string, Promise<WasmModule>>();

async function compile(path: string): Promise<WasmModule> {
  let p = compiled.get(path);
  if (!p) {
    p = (async () => {
      let bytes: Buffer;
      try {
        bytes = await readFile(path);
      } catch (cause) {
        throw new EngineLoadError(`cannot read the engine module ${path} (run \`npm run build:wasm\`)`, { cause });
      }
      try {
        return await WebAssembly.compile(bytes);
      } catch (cause) {
        throw new EngineLoadError(`cannot compile the engine module ${path}`, { cause });
      }
    })();
    compiled.set(path, p);
    p.catch(() => compiled.delete(path));
  }
  return p;
}

type Exports = Record<string, (...args: number[]) => number> & { memory: WasmMemory };

/** Pages (64 KiB) of the engine's shared memory at most: 4 GiB, the wasm32 limit (address space only until grown). */
const MAX_MEMORY_PAGES = 65536;

/** What tick threads need to run more instances of a core's module over its memory. */
export interface WasmShared {
  module: WasmModule;
  /** The shared memory every instance imports. */
  memory: WasmMemory;
}

/**
 * Instantiates the module at path and returns its exports as an EngineCore. A module that imports
 * its memory (the engine's build: shared, so tick threads can run over it) gets a new shared memory;
 * `shared` then says how to run tick threads. An older build that defines its own memory runs as
 * before (bench:engine times such builds beside this one).
 */
export async function instantiateWasmCore(path: string): Promise<EngineCore & { shared?: WasmShared }> {
  const module = await compile(path);
  const importsMemory = WebAssembly.Module.imports(module).some((i) => i.module === "env" && i.name === "memory" && i.kind === "memory");
  const importedMemory = importsMemory ? new WebAssembly.Memory({ initial: 1, maximum: MAX_MEMORY_PAGES, shared: true }) : undefined;
  let memory: WasmMemory | undefined = importedMemory;
  const readString = (ptr: number): string => {
    if (!memory || !ptr) return "";
    const len = new Uint32Array(memory.buffer, ptr - 4, 1)[0] >>> 1;
    return String.fromCharCode(...new Uint16Array(memory.buffer, ptr, len));
  };
  const instance = await WebAssembly.instantiate(module, {
    env: {
      ...(importedMemory ? { memory: importedMemory } : {}),
      abort(msg: number, file: number, line: number, col: number): never {
        throw new EngineTrapError(`engine abort: ${readString(msg)} at ${readString(file)}:${line}:${col}`);
      },
    },
  });
  const x = instance.exports as unknown as Exports;
  memory = importedMemory ?? x.memory;
  const mem = memory;
  const u = (f: (...a: number[]) => number) => (...a: number[]) => f(...a) >>> 0;
  const core: EngineCore & { shared?: WasmShared } = {
    kind: "wasm",
    shared: importedMemory && x.tickBegin && x.tickChunks ? { module, memory: importedMemory } : undefined,
    tickBegin: x.tickBegin ? u(x.tickBegin) : undefined,
    tickChunks: x.tickChunks ? u(x.tickChunks) : undefined,
    tickEnd: x.tickEnd ? u(x.tickEnd) : undefined,
    fcConfigure: x.fcConfigure,
    fcTrainSteps: x.fcTrainSteps,
    fcTrainLossSum: x.fcTrainLossSum,
    // Builds from before the sparse tier lack these two (bench:engine times such a build beside this one): no tiers, every close dense.
    fcDenseCloses: x.fcDenseCloses ? u(x.fcDenseCloses) : u(() => 0),
    fcCloses: x.fcCloses ? u(x.fcCloses) : u(() => 0),
    fcTrainBlockPtr: u(x.fcTrainBlockPtr),
    fcTrainBlockBytes: u(x.fcTrainBlockBytes),
    lstmForecast: x.lstmForecast,
    buffer: () => mem.buffer,
    init: x.init,
    ingest: u(x.ingest),
    ingestCounts: u(x.ingestCounts),
    tick: u(x.tick),
    lookup: x.lookup,
    saveGlobals: x.saveGlobals as () => void,
    loadGlobals: x.loadGlobals as () => void,
    ingressPtr: u(x.ingressPtr),
    ingressCapacity: u(x.ingressCapacity),
    countsPtr: u(x.countsPtr),
    countsCapacity: u(x.countsCapacity),
    outputPtr: u(x.outputPtr),
    statePtr: u(x.statePtr),
    stateBytes: u(x.stateBytes),
    slotBytes: u(x.slotBytes),
    slotExtOffset: u(x.slotExtOffset),
    indexEntries: u(x.indexEntries),
    ringBuckets: u(x.ringBuckets),
    periodBuckets: u(x.periodBuckets),
    closedBucket: x.closedBucket,
    usersTracked: u(x.usersTracked),
    heapTop: u(x.heapTop),
    memoryPages: x.memoryPages,
    hwForecast: x.hwForecast,
    hwUpper: x.hwUpper,
    hwLevel: x.hwLevel,
    hwTrend: x.hwTrend,
    hwAlpha: x.hwAlpha,
    hwErrVar: x.hwErrVar,
    hwObservations: x.hwObservations,
    hwSeason: x.hwSeason,
    todRate: x.todRate,
    featCount: x.featCount,
    featInputTokens: x.featInputTokens,
    featOutputTokens: x.featOutputTokens,
    featDistinctIps: x.featDistinctIps,
    featDistinctUas: x.featDistinctUas,
    featCv: x.featCv,
    featErrors: x.featErrors,
    featThrottled: x.featThrottled,
    cellRouteBin: x.cellRouteBin,
    userRequests: x.userRequests,
    userInputTokens: x.userInputTokens,
    userOutputTokens: x.userOutputTokens,
  };
  return core;
}
