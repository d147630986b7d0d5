// Every figure in the README's measured tables equals the value in the committed benchmark JSON
// it names (docs/benchmarks.md, "Figures in the README"), so a README figure cannot drift from
// the run that produced it. A figure is a number followed by a marker
//   <!-- fig:<file>:<path>[ scale=<factor>] -->
// naming bench/results/<file> and a path into it; the printed number must equal value × factor
// rounded to the decimals printed. A number in a figures table without a marker fails the test.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import {
  README_PATH, figureTables, figureValue, formatLike, mismatch, rewriteFigures, scanReadme, valueAt,
} from "../scripts/readme-figures.ts";

// ---- The parser itself: small fixtures, so the README check below cannot pass vacuously ----------

test("parser: markers, scales, selectors, targets and unmarked numbers", () => {
  const md = [
    "# x",
    "## Measured",
    "| case | figure | target |",
    "|---|---:|---|",
    "| ingest, 1 M users | **62.3**<!-- fig:e.json:ingest.rows[impl=wasm].ns --> ns (16.1<!-- fig:e.json:ingest.rate scale=1e-6 --> M/s) | ≤ 25 ns |",
    "| tick | 95 ms | ≤ 150 ms |",
    "| latency | 4 <!-- fig:pending:pipeline.json:latency --> ms | |",
    "| target | ≤ 0.39 | 5 ± 2 % |",
    "## Layout",
    "| a | b |",
    "|---|---|",
    "| x | 12 |",
  ].join("\n");
  const s = scanReadme(md);
  assert.equal(s.figures.map((f) => [f.printed, f.file, f.path, f.scale]), [
    ["62.3", "e.json", "ingest.rows[impl=wasm].ns", 1],
    ["16.1", "e.json", "ingest.rate", 1e-6],
  ]);
  assert.equal(s.unmarked.map((u) => [u.line, u.number]), [[6, "95"]], "the unmarked 95 ms is found; targets and other sections are not figures");
  assert.equal(s.pending.map((p) => p.line), [7]);
  const doc = { ingest: { rows: [{ impl: "peer", ns: 1100 }, { impl: "wasm", ns: 62.31 }], rate: 16_051_000 } };
  assert.is(valueAt(doc, "ingest.rows[impl=wasm].ns"), 62.31);
  assert.is(valueAt(doc, "ingest.rows.0.ns"), 1100);
  assert.is(valueAt(doc, "ingest.nope"), undefined);
  assert.is(mismatch("62.3", 62.31, 1), "");
  assert.is(mismatch("16.1", 16_051_000, 1e-6), "");
  assert.is(mismatch("1,100.9", 1100.87, 1), "");
  assert.ok(mismatch("62.4", 62.31, 1).includes("printed 62.4"));
  assert.ok(mismatch("0.42", 0.4251, 1).length > 0);
  assert.ok(mismatch("7", "7", 1).includes("not a finite number"));
});

// ---- The README -----------------------------------------------------------------------------------

test("rewrite: a marked figure is reprinted from its JSON at the decimals shown", () => {
  assert.is(formatLike("1,100.9", 1234.56, 1), "1,234.6");
  assert.is(formatLike("2.27", 2_004_000, 1e-6), "2.00");
  assert.is(formatLike("4.5", 0.0449, 100), "4.5");
  // A missing file is reported, not guessed.
  const r = rewriteFigures("| a | 1.0<!-- fig:no-such-file.json:x --> |");
  assert.equal(r.changed, []);
  assert.is(r.problems.length, 1);
});

test("README: every figure in the measured tables has a marker and equals its benchmark JSON", () => {
  const readme = readFileSync(README_PATH, "utf8");
  assert.ok(figureTables(readme).length > 0, "the README's Measured section has figures tables");
  const s = scanReadme(readme);
  assert.equal(
    s.unmarked.map((u) => `README.md:${u.line}: ${u.number} in "${u.cell}"`),
    [],
    "numbers in figures tables without a <!-- fig:file:path --> marker (docs/benchmarks.md)",
  );
  const docs = new Map<string, unknown>();
  const problems: string[] = [];
  for (const f of s.figures) {
    const { value, problem } = figureValue(f, docs);
    const why = problem ?? mismatch(f.printed, value, f.scale);
    if (why) problems.push(`README.md:${f.line}: ${f.printed} <- ${f.file}:${f.path}: ${why}`);
  }
  assert.equal(problems, [], "README figures that differ from their JSON (node --import tsx scripts/readme-figures.ts --write reprints them)");
  // Every JSON a figure comes from says where and how it was measured.
  for (const [file, doc] of docs) {
    if (doc === undefined) continue;
    const env = (doc as { env?: Record<string, unknown> }).env;
    assert.ok(env && env.cpuModel && env.cores && env.date && env.command, `bench/results/${file} has env.cpuModel, cores, date and command`);
  }
  if (s.pending.length) {
    console.log(`README figures awaiting their run (marked pending): ${s.pending.map((p) => `line ${p.line}: ${p.text}`).join("; ")}`);
  }
});

test.run();
