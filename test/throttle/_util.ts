// Builders shared by the throttle tests and bench: forecast messages, grant messages, a fake clock.
import { encodeForecastMessages } from "../../src/processor/forecasts.ts";
import { FORECAST_RECORD_BYTES } from "../../src/engine/layout.ts";
import { userHash } from "../../src/telemetry/hash.ts";
import { computeGrants, type PlanLimit } from "../../src/throttle/grants.ts";
import type { ThrottleClient } from "../../src/throttle/client.ts";
import { GRANT_RECORD_BYTES, MessageKind, encodeGrantMessages, encodePoolsMessage, writeGrantRecord } from "../../src/throttle/wire.ts";

export const PLANS: Record<string, PlanLimit> = { default: { requestsPerSec: 10, tokensPerSec: 10_000 }, pro: { requestsPerSec: 40 } };
export const SAFE: Record<string, PlanLimit> = { default: { requestsPerSec: 1, tokensPerSec: 1_000 }, pro: { requestsPerSec: 4 } };

/** A settable clock. */
export function fakeClock(startMs = 1_700_000_000_000) {
  const c = { t: startMs, now: () => c.t };
  return c;
}

export interface UserSpec {
  user: string;
  upper: number;
  alloc?: number;
  plan?: number;
  pool?: number;
  observed?: number;
}

/** Forecast message(s) of one partition tick for the given users. */
export function forecastMessages(partition: number, tickTimeMs: number, users: { user: string; upper: number; observed?: number }[]): Uint8Array[] {
  const rec = new Uint8Array(users.length * FORECAST_RECORD_BYTES);
  const dv = new DataView(rec.buffer);
  users.forEach((u, i) => {
    const h = userHash(u.user);
    const o = i * FORECAST_RECORD_BYTES;
    dv.setUint32(o, h.lo, true);
    dv.setUint32(o + 4, h.hi, true);
    dv.setFloat64(o + 8, u.upper * 0.8, true);
    dv.setFloat64(o + 16, u.upper, true);
    dv.setFloat64(o + 24, u.observed ?? u.upper * 0.5, true);
  });
  return encodeForecastMessages(partition, tickTimeMs, rec, users.length);
}

/** A grant delta message (one partition) straight from the policy, for client-only tests. */
export function grantMessage(partition: number, partitions: number, tickTimeMs: number, ttlMs: number, users: UserSpec[], plans = [PLANS.default, PLANS.pro], kind: 1 | 2 = MessageKind.delta): Uint8Array {
  const n = users.length;
  const t = computeGrants(
    {
      count: n,
      userHashLo: Uint32Array.from(users, (u) => userHash(u.user).lo),
      userHashHi: Uint32Array.from(users, (u) => userHash(u.user).hi),
      upperReqPerSec: Float64Array.from(users, (u) => u.upper),
      allocReqPerSec: Float64Array.from(users, (u) => u.alloc ?? NaN),
      planIndex: Uint8Array.from(users, (u) => u.plan ?? 0),
      poolIndex: Uint16Array.from(users, (u) => u.pool ?? 0),
    },
    [{ capacityReqPerSec: 100 }, { capacityReqPerSec: 100 }],
    { plans, burstFactor: 1.5 },
  );
  const rec = new Uint8Array(n * GRANT_RECORD_BYTES);
  const dv = new DataView(rec.buffer);
  for (let i = 0; i < n; i++) writeGrantRecord(dv, i * GRANT_RECORD_BYTES, t, i);
  return encodeGrantMessages(kind, partition, partitions, tickTimeMs, ttlMs, rec, n)[0];
}

/** A pool state message with the given pressures. */
export function poolsMessage(pressures: number[], tickTimeMs: number, ttlMs = 3000): Uint8Array {
  return encodePoolsMessage(pressures.map((p, i) => ({ pool: i, allocatedReqPerSec: 100, loadReqPerSec: 100 * p, pressure: p })), tickTimeMs, ttlMs);
}

/** Sends `ratePerSec` requests per second for `seconds` through `check`, advancing the clock; returns allowed count and reasons. */
export function drive(clock: { t: number }, check: () => { allowed: boolean; reason: string }, ratePerSec: number, seconds: number) {
  const step = 1000 / ratePerSec;
  const n = Math.round(ratePerSec * seconds);
  let allowed = 0;
  const reasons = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    clock.t += step;
    const d = check();
    if (d.allowed) allowed++;
    reasons.set(d.reason, (reasons.get(d.reason) ?? 0) + 1);
  }
  return { allowed, sent: n, reasons };
}

/** Resolves when `cond` holds after a message is applied at `c` (or already holds); fails after `timeoutMs` naming `what`. */
export function whenApplied(c: ThrottleClient, cond: () => boolean, timeoutMs = 5000, what = "condition"): Promise<void> {
  if (cond()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} not met within ${timeoutMs} ms`)), timeoutMs);
    const prev = c.onApplied;
    c.onApplied = (m) => {
      prev?.(m);
      if (cond()) {
        clearTimeout(t);
        c.onApplied = prev;
        resolve();
      }
    };
  });
}
