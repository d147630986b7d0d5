// The README's figures and the benchmark JSON they come from (docs/benchmarks.md, "Figures in
// the README"). A figure is a number in a table under "## Measured" followed by a marker
//   <!-- fig:<file>:<path>[ scale=<factor>] -->
// naming bench/results/<file> and a path into it; the printed number must equal value × factor
// rounded to the decimals printed. test/readme-figures.test.ts runs the check;
//   node --import tsx scripts/readme-figures.ts           lists every figure that differs
//   node --import tsx scripts/readme-figures.ts --write   rewrites them from the JSON (same decimals)
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
/** Where the benchmark JSON lives. */
export const RESULTS_DIR = join(root, "bench", "results");
/** The README checked. */
export const README_PATH = join(root, "README.md");


/** One marked figure found in the README. */
export interface Figure {
  line: number;
  printed: string;
  file: string;
  path: string;
  scale: number;
}

/** A marker `fig:pending:<file>:<what>`: a figure whose run is still to come (listed, not checked). */
export interface Pending {
  line: number;
  text: string;
}

/** A number in a figures table with no marker after it. */
export interface Unmarked {
  line: number;
  cell: string;
  number: string;
}

// A minus sign right before the digits belongs to the number (a signed figure such as "-4.7 %").
const NUMBER = /-?\d[\d,]*(?:\.\d+)?/g;
const MARKER = /<!--\s*fig:([^\s>]+?)(?:\s+scale=([-+0-9.eE]+))?\s*-->/g;

/** Cells of a markdown table row (without the outer pipes). */
function cells(row: string): string[] {
  const t = row.trim().replace(/^\|/, "").replace(/\|$/, "");
  return t.split("|").map((c) => c.trim());
}

/**
 * The figures tables: every table under the README's "## Measured" heading (up to the next
 * level-2 heading).
 */
export function figureTables(readme: string): { header: string[]; rows: { line: number; cells: string[] }[] }[] {
  const lines = readme.split("\n");
  const start = lines.findIndex((l) => /^##\s+Measured\b/.test(l));
  if (start < 0) return [];
  const tables: { header: string[]; rows: { line: number; cells: string[] }[] }[] = [];
  let i = start + 1;
  while (i < lines.length && !/^##\s/.test(lines[i])) {
    if (lines[i].trim().startsWith("|") && i + 1 < lines.length && /^\s*\|?\s*:?-{3,}/.test(lines[i + 1])) {
      const header = cells(lines[i]);
      const rows: { line: number; cells: string[] }[] = [];
      i += 2;
      while (i < lines.length && lines[i].trim().startsWith("|")) {
        rows.push({ line: i + 1, cells: cells(lines[i]) });
        i++;
      }
      tables.push({ header, rows });
      continue;
    }
    i++;
  }
  return tables;
}

/**
 * The figures and unmarked numbers of one cell. A number is a figure when a marker follows it
 * with only whitespace or emphasis (`*`, `_`) between. Numbers right after ≤, ≥, <, > are
 * targets, not figures.
 */
function scanCell(cell: string, line: number, out: { figures: Figure[]; pending: Pending[]; unmarked: Unmarked[] }): void {
  const markers = [...cell.matchAll(MARKER)].map((m) => ({ start: m.index!, end: m.index! + m[0].length, ref: m[1], scale: m[2] }));
  const inMarker = (pos: number) => markers.some((m) => pos >= m.start && pos < m.end);
  for (const n of cell.matchAll(NUMBER)) {
    const at = n.index!;
    if (inMarker(at)) continue;
    // Part of a word (e.g. "h1", "p99", "R3") or a unit/label: not a figure.
    const before = cell.slice(0, at);
    if (/[A-Za-z_]$/.test(before)) continue;
    if (/[≤≥<>]\s*$/.test(before.replace(/\*+$/, ""))) continue;
    const after = cell.slice(at + n[0].length);
    const m = /^[\s*_]*<!--/.exec(after);
    const marker = m ? markers.find((k) => k.start === at + n[0].length + m[0].length - 4) : undefined;
    if (!marker) {
      out.unmarked.push({ line, cell, number: n[0] });
      continue;
    }
    if (marker.ref.startsWith("pending:")) {
      out.pending.push({ line, text: `${n[0]} (${marker.ref.slice("pending:".length)})` });
      continue;
    }
    const sep = marker.ref.indexOf(":");
    out.figures.push({
      line,
      printed: n[0],
      file: sep < 0 ? marker.ref : marker.ref.slice(0, sep),
      path: sep < 0 ? "" : marker.ref.slice(sep + 1),
      scale: marker.scale === undefined ? 1 : Number(marker.scale),
    });
  }
}

/** Every figure, pending figure and unmarked number of the README's figures tables. */
export function scanReadme(readme: string) {
  const out = { figures: [] as Figure[], pending: [] as Pending[], unmarked: [] as Unmarked[] };
  for (const t of figureTables(readme)) {
    // A "target" column states what a figure must reach; it is not measured.
    const targetCols = new Set(t.header.map((h, i) => (/^target\b/i.test(h.replace(/[*_]/g, "")) ? i : -1)).filter((i) => i >= 0));
    for (const r of t.rows) {
      // The first column names the row; a row whose name starts with "target" states targets.
      if (/^[*_]*target\b/i.test(r.cells[0] ?? "")) continue;
      r.cells.forEach((c, i) => {
        if (i === 0 || targetCols.has(i)) return;
        scanCell(c, r.line, out);
      });
    }
  }
  return out;
}

/**
 * The value at a dotted path. A segment is a key, an array index, or `key[field=value]`: the
 * element of array `key` whose `field` equals `value` (compared as text).
 */
export function valueAt(doc: unknown, path: string): unknown {
  let cur: unknown = doc;
  for (const seg of path.split(".")) {
    const sel = /^([^[\]]+)\[([^=\]]+)=([^\]]*)\]$/.exec(seg);
    if (sel) {
      const arr = (cur as Record<string, unknown> | undefined)?.[sel[1]];
      if (!Array.isArray(arr)) return undefined;
      cur = arr.find((x) => String((x as Record<string, unknown>)?.[sel[2]]) === sel[3]);
    } else {
      cur = cur === null || typeof cur !== "object" ? undefined : (cur as Record<string, unknown>)[seg];
    }
    if (cur === undefined) return undefined;
  }
  return cur;
}

/** Why a printed figure does not match value × scale at its printed precision ("" when it does). */
export function mismatch(printed: string, value: unknown, scale: number): string {
  if (typeof value !== "number" || !Number.isFinite(value)) return `the JSON value is ${JSON.stringify(value)}, not a finite number`;
  const shown = Number(printed.replace(/,/g, ""));
  const decimals = printed.includes(".") ? printed.split(".")[1].length : 0;
  const want = value * scale;
  const rounded = Math.round(want * 10 ** decimals) / 10 ** decimals;
  // Rounding to the printed decimals must give the printed number (a tiny slack for binary floats).
  if (Math.abs(rounded - shown) <= 1e-9 * Math.max(1, Math.abs(shown))) return "";
  return `printed ${printed}, the JSON gives ${want} (${rounded} at ${decimals} decimals)`;
}

/** A figure's JSON value (undefined with the reason when its file or path is missing). */
export function figureValue(f: Figure, cache = new Map<string, unknown>()): { value?: unknown; problem?: string; doc?: unknown } {
  const file = join(RESULTS_DIR, f.file);
  if (!cache.has(f.file)) cache.set(f.file, existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : undefined);
  const doc = cache.get(f.file);
  if (doc === undefined) return { problem: `bench/results/${f.file} does not exist` };
  const value = valueAt(doc, f.path);
  if (value === undefined) return { problem: `no "${f.path}" in bench/results/${f.file}`, doc };
  return { value, doc };
}

/** `value × scale` printed like `printed`: same decimals, thousands separators if it had them. */
export function formatLike(printed: string, value: number, scale: number): string {
  const decimals = printed.includes(".") ? printed.split(".")[1].length : 0;
  const s = (value * scale).toFixed(decimals);
  if (!printed.includes(",")) return s;
  const [int, frac] = s.split(".");
  return int.replace(/\B(?=(\d{3})+(?!\d))/g, ",") + (frac !== undefined ? `.${frac}` : "");
}

/** Rewrites every marked figure of `readme` from its JSON; returns the new text and what changed. */
export function rewriteFigures(readme: string): { text: string; changed: string[]; problems: string[] } {
  const cache = new Map<string, unknown>();
  const changed: string[] = [];
  const problems: string[] = [];
  const text = readme.replace(/(-?\d[\d,]*(?:\.\d+)?)([\s*_]*)(<!--\s*fig:([^\s>]+?)(?:\s+scale=([-+0-9.eE]+))?\s*-->)/g,
    (all, num: string, gap: string, marker: string, ref: string, scale?: string) => {
      if (ref.startsWith("pending:")) return all;
      const sep = ref.indexOf(":");
      const f: Figure = { line: 0, printed: num, file: ref.slice(0, sep), path: ref.slice(sep + 1), scale: scale === undefined ? 1 : Number(scale) };
      const { value, problem } = figureValue(f, cache);
      if (problem || typeof value !== "number") {
        problems.push(`${ref}: ${problem ?? `not a number: ${JSON.stringify(value)}`}`);
        return all;
      }
      const next = formatLike(num, value, f.scale);
      if (next !== num) changed.push(`${ref}: ${num} -> ${next}`);
      return next + gap + marker;
    });
  return { text, changed, problems };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const readme = readFileSync(README_PATH, "utf8");
  if (process.argv.includes("--write")) {
    const r = rewriteFigures(readme);
    writeFileSync(README_PATH, r.text);
    for (const c of r.changed) console.log(`updated ${c}`);
    for (const p of r.problems) console.error(`problem ${p}`);
    process.exitCode = r.problems.length ? 1 : 0;
  } else {
    const s = scanReadme(readme);
    const cache = new Map<string, unknown>();
    let bad = 0;
    for (const u of s.unmarked) (bad++, console.log(`README.md:${u.line}: ${u.number} has no marker`));
    for (const f of s.figures) {
      const { value, problem } = figureValue(f, cache);
      const why = problem ?? mismatch(f.printed, value, f.scale);
      if (why) (bad++, console.log(`README.md:${f.line}: ${f.file}:${f.path}: ${why}`));
    }
    for (const p of s.pending) console.log(`README.md:${p.line}: pending ${p.text}`);
    console.log(`${s.figures.length} figures checked, ${bad} problems, ${s.pending.length} pending`);
    process.exitCode = bad ? 1 : 0;
  }
}
