// How a RateLimitRequest becomes limiter checks: validation (every problem names its field, so
// the caller gets INVALID_ARGUMENT with a path) and the descriptor → user / plan / pool mapping.
// Pure: no I/O, no clock.
import { RlsInvalidRequestError } from "./errors.ts";
import type { LimitCheck } from "./limiter.ts";

/** What a descriptor entry sets when a rule matches it. */
export type DescriptorRole = "user" | "plan" | "pool";
/** How `hits_addend` is counted: as requests, or as LLM tokens on top of one request. */
export type HitsAddendMode = "requests" | "tokens";

/** One mapping rule (see the `envoy.descriptors.rules` option for the meaning of each field). */
export interface DescriptorRule {
  key: string;
  value?: string;
  sets: DescriptorRole;
  prefix?: string;
  to?: string;
}

/** The mapping options (the `envoy.descriptors` config section). */
export interface DescriptorMappingOptions {
  rules: readonly DescriptorRule[];
  defaultPlan: string;
  defaultPool?: string;
  hitsAddend: HitsAddendMode;
  poolHitsAddend?: Readonly<Record<string, HitsAddendMode>>;
  maxDescriptors: number;
}

/** Envoy's own bound on a hits addend (its filter rejects larger values). */
export const MAX_HITS_ADDEND = 1_000_000_000;

/** The decoded request as proto-loader gives it (snake_case, enums as numbers, absent = undefined). */
export interface RlsRequestObject {
  domain?: string;
  descriptors?: {
    entries?: { key?: string; value?: string }[];
    limit?: { requests_per_unit?: number; unit?: number } | null;
    hits_addend?: { value?: number } | null;
  }[];
  hits_addend?: number;
}

/** One descriptor's mapping; `check` is null when no rule gives it a user (answered OK, unlimited). */
export interface MappedDescriptor {
  check: LimitCheck | null;
  pool: string | undefined;
}

interface CompiledRule extends DescriptorRule {
  index: number;
}

/** Compiled mapping rules: a lookup by entry key, rules kept in priority (list) order. */
export class DescriptorMapping {
  private readonly byKey = new Map<string, CompiledRule[]>();
  readonly options: DescriptorMappingOptions;

  constructor(options: DescriptorMappingOptions) {
    this.options = options;
    options.rules.forEach((r, index) => {
      const list = this.byKey.get(r.key) ?? [];
      list.push({ ...r, index });
      this.byKey.set(r.key, list);
    });
  }

  /**
   * Validates `req` for `domain` and maps each descriptor. Throws {@link RlsInvalidRequestError}
   * naming the first bad field.
   */
  map(req: RlsRequestObject, domain: string): MappedDescriptor[] {
    if (!req.domain) throw new RlsInvalidRequestError("domain", "must not be empty");
    if (req.domain !== domain) throw new RlsInvalidRequestError("domain", `"${req.domain}" is not served here (this service answers for "${domain}")`);
    const ds = req.descriptors ?? [];
    if (ds.length === 0) throw new RlsInvalidRequestError("descriptors", "at least one descriptor is required");
    if (ds.length > this.options.maxDescriptors) throw new RlsInvalidRequestError("descriptors", `at most ${this.options.maxDescriptors} descriptors per request, got ${ds.length}`);
    const requestHits = req.hits_addend ?? 0;
    if (requestHits > MAX_HITS_ADDEND) throw new RlsInvalidRequestError("hits_addend", `must be <= ${MAX_HITS_ADDEND}, got ${requestHits}`);
    const out: MappedDescriptor[] = new Array(ds.length);
    for (let i = 0; i < ds.length; i++) out[i] = this.mapOne(ds[i], i, requestHits);
    return out;
  }

  private mapOne(d: NonNullable<RlsRequestObject["descriptors"]>[number], i: number, requestHits: number): MappedDescriptor {
    const entries = d.entries ?? [];
    if (entries.length === 0) throw new RlsInvalidRequestError(`descriptors[${i}].entries`, "at least one entry is required");
    const o = this.options;
    let user: string | undefined, userRank = Infinity;
    let plan: string | undefined, planRank = Infinity;
    let pool: string | undefined, poolRank = Infinity;
    for (let j = 0; j < entries.length; j++) {
      const e = entries[j];
      if (!e.key) throw new RlsInvalidRequestError(`descriptors[${i}].entries[${j}].key`, "must not be empty");
      if (!e.value) throw new RlsInvalidRequestError(`descriptors[${i}].entries[${j}].value`, `must not be empty (key "${e.key}")`);
      const rules = this.byKey.get(e.key);
      if (!rules) continue;
      for (const r of rules) {
        if (r.value !== undefined && r.value !== e.value) continue;
        const v = r.to ?? e.value;
        // The earliest rule in the list wins for each role, whatever the entry order.
        if (r.sets === "user") {
          if (r.index < userRank) { userRank = r.index; user = r.prefix ? r.prefix + v : v; }
        } else if (r.sets === "plan") {
          if (r.index < planRank) { planRank = r.index; plan = v; }
        } else if (r.index < poolRank) { poolRank = r.index; pool = v; }
      }
    }
    const limit = d.limit;
    if (limit && limit.unit !== undefined && (limit.unit < 1 || limit.unit > 6)) {
      throw new RlsInvalidRequestError(`descriptors[${i}].limit.unit`, `must be one of SECOND..YEAR (1..6), got ${limit.unit}`);
    }
    const own = d.hits_addend ? (d.hits_addend.value ?? 0) : undefined;
    if (own !== undefined && (!Number.isFinite(own) || own > MAX_HITS_ADDEND)) {
      throw new RlsInvalidRequestError(`descriptors[${i}].hits_addend`, `must be <= ${MAX_HITS_ADDEND}, got ${own}`);
    }
    pool ??= o.defaultPool;
    if (user === undefined) return { check: null, pool };
    const mode = (pool !== undefined ? o.poolHitsAddend?.[pool] : undefined) ?? o.hitsAddend;
    // Envoy: the request-level hits_addend 0 means 1; a per-descriptor one replaces it (0 allowed).
    const use =
      mode === "tokens"
        ? { requests: 1, tokens: own ?? requestHits }
        : { requests: own ?? (requestHits || 1), tokens: 0 };
    return { check: { user, plan: plan ?? o.defaultPlan, use }, pool };
  }
}

/** A field path with its indices removed ("descriptors[3].entries[0].key" → "descriptors[].entries[].key"), for metric labels. */
export function fieldLabel(field: string): string {
  return field.replace(/\[\d+\]/g, "[]");
}
