// Engine parameters (set once by init, copied into the params block of the state region so a
// snapshot carries them) and the mutable globals (mirrored into the globals block by saveGlobals).
import { NIL } from "./records";

/** Parameters, fixed after init. */
export class Params {
  static capacity: u32 = 0;
  static indexEntries: u32 = 0;
  static indexMask: u32 = 0;
  static slotBytes: u32 = 0;
  static widthMs: f64 = 0;
  static widthSec: f64 = 0;
  static latenessMs: f64 = 0;
  static ring: u32 = 0;
  static seasonPoints: u32 = 0;
  static periodBuckets: u32 = 0;
  static horizon: u32 = 0;
  static z: f64 = 0;
  static alpha: f64 = 0;
  static beta: f64 = 0;
  static gamma: f64 = 0;
  static phi: f64 = 0;
  static alphaMax: f64 = 0;
  static tsThreshold: f64 = 0;
  static tsSmoothing: f64 = 0;
  static alphaDecay: f64 = 0;
  static varSmoothing: f64 = 0;
  static todAlpha: f64 = 0;
  static expireAfter: u32 = 0;
  static maxCatchUp: u32 = 0;
  /** sum_{k=1..horizon} phi^k, for the damped trend at the configured horizon. */
  static phiSumH: f64 = 0;
  /** h-step variance multiplier at the configured horizon: 1 + alpha^2 (h - 1). */
  static varMultH: f64 = 0;
}

/** Addresses of the regions in linear memory (fixed after init). */
export class Regions {
  static ingress: usize = 0;
  static ingressCap: u32 = 0;
  static counts: usize = 0;
  static countsCap: u32 = 0;
  static output: usize = 0;
  static scratch: usize = 0;
  static hints: usize = 0;
  static state: usize = 0;
  static stateBytes: usize = 0;
  static params: usize = 0;
  static globals: usize = 0;
  static index: usize = 0;
  static slab: usize = 0;
  static end: usize = 0;
}

/** Mutable engine state kept in wasm globals for speed; saveGlobals/loadGlobals sync it. */
export class G {
  static initialized: bool = false;
  static closed: u32 = 0;
  static used: u32 = 0;
  static freeHead: u32 = NIL;
  static head: u32 = NIL;
  static tail: u32 = NIL;
  static tracked: u32 = 0;
  static applied: f64 = 0;
  static invalid: f64 = 0;
  static late: f64 = 0;
  static early: f64 = 0;
  static evictions: f64 = 0;
  static expirations: f64 = 0;
  static bucketsClosed: f64 = 0;
  static ticks: f64 = 0;
  static countsApplied: f64 = 0;
  static skippedBuckets: f64 = 0;
}
