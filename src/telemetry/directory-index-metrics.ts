// Prometheus series of a DirectoryIndex, read from its stats at scrape time (the index keeps plain
// numbers on its watch callback): how many users it holds, whether it has loaded, and what it
// refused, so a directory that stops matching plans (bad values, a full index) shows on /metrics.
import { Counter, Gauge, type Registry } from "prom-client";
import { METRIC_PREFIX } from "../obs/metrics.ts";
import type { DirectoryIndexStats } from "./directory-index.ts";

/** Registers the index's series in `registry`; `stats()` is read at every scrape. */
export function registerDirectoryIndexMetrics(registry: Registry, stats: () => DirectoryIndexStats): void {
  const p = METRIC_PREFIX;
  const r = [registry];
  new Gauge({ name: `${p}directory_users`, help: "Users the in-memory user directory holds (with a plan or segment).", registers: r, collect() { this.set(stats().users); } });
  new Gauge({ name: `${p}directory_initialized`, help: "1 once the user directory's bucket was loaded.", registers: r, collect() { this.set(stats().initialized ? 1 : 0); } });
  // Counters only go up: each scrape adds what the index counted since the last one.
  const counted = (read: (s: DirectoryIndexStats) => Record<string, number>) => {
    const last = new Map<string, number>();
    return function (this: Counter) {
      for (const [label, v] of Object.entries(read(stats()))) {
        const d = v - (last.get(label) ?? 0);
        if (d > 0) this.inc(label === "" ? {} : { reason: label }, d);
        last.set(label, v);
      }
    };
  };
  new Counter({
    name: `${p}directory_bad_entries_total`, help: "User directory entries refused and skipped, by reason (key: not 16 hex digits; value: not the documented JSON).",
    labelNames: ["reason"], registers: r, collect: counted((s) => ({ key: s.badEntries.key, value: s.badEntries.value })),
  });
  new Counter({ name: `${p}directory_full_total`, help: "New users not held because the index was full (they answer unknown).", registers: r, collect: counted((s) => ({ "": s.full })) });
  new Counter({ name: `${p}directory_watch_restarts_total`, help: "User directory watches restarted (reconnects, ended watches).", registers: r, collect: counted((s) => ({ "": s.watchRestarts })) });
}
