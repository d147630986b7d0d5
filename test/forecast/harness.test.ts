import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { createInterface } from "node:readline";
import { createReadStream } from "node:fs";
import { createGunzip } from "node:zlib";
import {
  ForecastOptionError,
  TraceFormatError,
  evaluate,
  loadRateTrace,
  replayThroughEngine,
  seasonalNaiveScale,
} from "../../src/forecast/index.ts";

const REAL = "../shared/data/servegen_client_rate_10min.csv.gz";
const DAYS = 4;
const TRAIN = 2 * 144;
const dir = mkdtempSync(join(tmpdir(), "fc-harness-"));
const slice = join(dir, "slice.csv.gz");

/** A slice of the real trace: a few clients of each language model, the first DAYS days. */
async function makeSlice(): Promise<void> {
  const keep = new Set(["m-large:0", "m-large:1", "m-large:3", "m-mid:0", "m-mid:2", "m-small:0"]);
  const out: string[] = [];
  const rl = createInterface({ input: createReadStream(REAL).pipe(createGunzip()), crlfDelay: Infinity });
  for await (const line of rl) {
    if (out.length === 0) {
      out.push(line);
      continue;
    }
    const f = line.split(",");
    if (keep.has(`${f[0]}:${f[1]}`) && Number(f[2]) < DAYS * 86400) out.push(line);
  }
  writeFileSync(slice, gzipSync(out.join("\n") + "\n"));
}

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], { timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test.before(makeSlice);
test.after(() => rmSync(dir, { recursive: true, force: true }));

test("loader: dense series per client, bad rows named by line", async () => {
  const s = await loadRateTrace(slice);
  assert.is(s.length, 6);
  for (const c of s) assert.is(c.requests.length, DAYS * 144);
  const bad = join(dir, "bad.csv");
  writeFileSync(bad, "model,client_id,t_start_s,requests\nm,1,0,5\nm,1,600,-3\n");
  try {
    await loadRateTrace(bad);
    assert.unreachable();
  } catch (e) {
    assert.instance(e, TraceFormatError);
    assert.match((e as Error).message, /bad\.csv:3/);
  }
  const noCol = join(dir, "nocol.csv");
  writeFileSync(noCol, "model,client,t_start_s,requests\n");
  await loadRateTrace(noCol).then(() => assert.unreachable(), (e) => assert.match((e as Error).message, /client_id/));
});

test("evaluate: naive MASE equals the hand-computed value; options are validated", async () => {
  const s = await loadRateTrace(slice);
  const r = evaluate(s, { trainWindows: TRAIN, horizons: [1, 3], models: ["naive", "snaive", "ensemble"] });
  assert.ok(r.clients.length >= 3, `clients ${r.clients}`);
  const c = s.find((x) => x.key === r.clients[0])!;
  const y = c.requests;
  let e = 0, n = 0;
  for (let t = TRAIN; t < y.length; t++) {
    e += Math.abs(y[t] - y[t - 3]);
    n++;
  }
  const expected = e / n / seasonalNaiveScale(y, TRAIN, 144);
  assert.ok(Math.abs(r.perClientMase.naive["3"][0] - expected) < 1e-12);
  const ens = r.models.find((m) => m.model === "ensemble")!;
  for (const h of ens.horizons) {
    assert.ok(h.exceedShare >= 0 && h.exceedShare < 0.2, `exceed ${h.exceedShare}`);
    assert.ok(Number.isFinite(h.mase.median));
  }
  assert.throws(() => evaluate(s, { horizons: [0] }), (x: unknown) => x instanceof ForecastOptionError && /horizons/.test((x as Error).message));
  assert.throws(() => evaluate(s, { trainWindows: TRAIN, models: ["nope" as never] }), (x: unknown) => x instanceof ForecastOptionError && /nope/.test((x as Error).message));
  assert.throws(() => evaluate(s, { trainWindows: TRAIN, minRequests: 1e15 }), (x: unknown) => x instanceof ForecastOptionError && /no client/.test((x as Error).message));
});

test("engine replay: WASM engine and its TS reference give the same forecasts", async () => {
  if (!existsSync("build/engine.wasm")) throw new Error("build/engine.wasm missing: run npm run build:wasm");
  const s = (await loadRateTrace(slice)).slice(0, 3);
  const a = await replayThroughEngine(s, { engine: "wasm", horizons: [1, 6], quantile: 0.95 });
  const b = await replayThroughEngine(s, { engine: "ts", horizons: [1, 6], quantile: 0.95 });
  let nonzero = 0;
  for (const c of s) {
    const pa = a["hw-engine"].byKey.get(c.key)!, pb = b["hw-engine"].byKey.get(c.key)!;
    for (let k = 0; k < 2; k++)
      for (let t = 0; t < c.requests.length; t++) {
        assert.ok(Math.abs(pa.preds[k][t] - pb.preds[k][t]) <= 1e-6 * (1 + Math.abs(pb.preds[k][t])), `${c.key} h#${k} t=${t}`);
        assert.ok(pa.uppers![k][t] >= pa.preds[k][t] - 1e-9);
        if (pa.preds[k][t] > 0) nonzero++;
      }
  }
  assert.ok(nonzero > 1000, "the engine produced forecasts");
});

test("CLI: foresight train writes weights; foresight eval uses them, prints the table, writes JSON", async () => {
  const w = join(dir, "w.bin");
  const tr = await cli(["train", "--data", slice, "--out", w, "--train-windows", String(TRAIN), "--epochs", "1"]);
  assert.is(tr.code, 0, tr.stderr);
  assert.match(tr.stdout, /trained on \d+ clients/);
  const out = join(dir, "out.json");
  const ev = await cli(["eval", "--data", slice, "--train-windows", String(TRAIN), "--weights", w, "--limit", "2", "--engine", "ts", "--json", out, "--models", "naive,lstm,ensemble,hw-engine"]);
  assert.is(ev.code, 0, ev.stderr);
  assert.match(ev.stdout, /2 clients, train 288 buckets/);
  for (const m of ["naive", "lstm", "ensemble", "hw-engine"]) assert.match(ev.stdout, new RegExp(`^${m}\\s`, "m"));
  assert.match(ev.stderr, /clients 2\/2/);
  const j = JSON.parse(readFileSync(out, "utf8"));
  assert.is(j.clients.length, 2);
  assert.equal(j.models.map((m: { model: string }) => m.model), ["naive", "lstm", "ensemble", "hw-engine"]);
  const bad = await cli(["eval", "--data", slice, "--horizons", "1,x"]);
  assert.is.not(bad.code, 0);
  assert.match(bad.stderr, /not a comma list of integers/);
  const missing = await cli(["eval", "--data", slice, "--clients", "m-large:999", "--train-windows", String(TRAIN)]);
  assert.is.not(missing.code, 0);
  assert.match(missing.stderr, /ForecastOptionError: --clients: not in .*m-large:999/);
});

test.run();
