// Pure helpers over JSON documents: layer merging, path-level diffs, path lookup.

/** A plain JSON object (not an array, not null). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Merges `over` onto `base`: objects merge key by key, arrays and scalars replace, `undefined`
 * in `over` leaves the base value. Inputs are not modified.
 */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (over === undefined) return base;
  if (!isPlainObject(base) || !isPlainObject(over)) return over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = deepMerge(base[k], v);
  return out;
}

/** One path-level difference between two documents. */
export interface ConfigChange {
  /** Dotted path, array elements by index ("pools.1.mode"). */
  path: string;
  /** "added": absent before; "removed": absent after; "changed": both present, different. */
  kind: "added" | "removed" | "changed";
  before?: unknown;
  after?: unknown;
}

/**
 * Path-level changes from `a` to `b`, sorted by path. Objects and arrays are descended into
 * (arrays by index, an added or removed object per leaf); a leaf or a type change is one change.
 */
export function diffConfigs(a: unknown, b: unknown): ConfigChange[] {
  const out: ConfigChange[] = [];
  walk(a, b, [], out);
  return out.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
}

function walk(a: unknown, b: unknown, path: string[], out: ConfigChange[]): void {
  // A missing side against an object reads as {}, so additions and removals are listed per leaf.
  if ((isPlainObject(a) || a === undefined) && (isPlainObject(b) || b === undefined) && a !== b) {
    a ??= {};
    b ??= {};
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) walk(a[k], b[k], [...path, k], out);
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) walk(a[i], b[i], [...path, String(i)], out);
    return;
  }
  if (a === undefined && b === undefined) return;
  const p = path.join(".");
  if (a === undefined) out.push({ path: p, kind: "added", after: b });
  else if (b === undefined) out.push({ path: p, kind: "removed", before: a });
  else if (JSON.stringify(a) !== JSON.stringify(b)) out.push({ path: p, kind: "changed", before: a, after: b });
}

/** The value at a dotted path ("" = the whole document); undefined when absent. */
export function getPath(doc: unknown, path: string): unknown {
  if (path === "") return doc;
  let cur: unknown = doc;
  for (const part of path.split(".")) {
    if (isPlainObject(cur)) cur = cur[part];
    else if (Array.isArray(cur) && /^\d+$/.test(part)) cur = cur[Number(part)];
    else return undefined;
  }
  return cur;
}

/** Dotted paths of every leaf (scalar, array, or empty object) of a document. */
export function leafPaths(doc: unknown, prefix: string[] = []): string[] {
  if (!isPlainObject(doc) || Object.keys(doc).length === 0) return prefix.length ? [prefix.join(".")] : [];
  return Object.entries(doc).flatMap(([k, v]) => (v === undefined ? [] : leafPaths(v, [...prefix, k])));
}
