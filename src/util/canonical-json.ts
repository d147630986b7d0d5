// JSON with object keys sorted, so two values that differ only in key order compare equal
// (settings objects built by spreading arrive in any order). Functions and undefined are left
// out, as JSON.stringify does.

/** `v` as JSON with every object's keys sorted; `omitKeys` are left out at every depth. */
export function canonicalJson(v: unknown, omitKeys: ReadonlySet<string> = new Set()): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === "object" && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x).filter(([k]) => !omitKeys.has(k)).sort(([p], [q]) => (p < q ? -1 : p > q ? 1 : 0)))
      : x,
  );
}
