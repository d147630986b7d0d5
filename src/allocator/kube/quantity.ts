// Kubernetes resource quantities ("500m", "2", "512Mi", "1.5Gi") as numbers of base units.

const SUFFIX: Record<string, number> = {
  n: 1e-9, u: 1e-6, m: 1e-3, "": 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/** Parses a resource quantity into base units (cores, bytes); NaN when malformed or absent. */
export function parseQuantity(q: unknown): number {
  if (typeof q === "number") return q;
  if (typeof q !== "string") return NaN;
  const m = /^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$/.exec(q.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return Number.isFinite(n) ? n * SUFFIX[m[2] ?? ""] : NaN;
}
