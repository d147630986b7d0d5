// A slice of the real ServeGen trace for the replay tests: a few clients of two language models,
// the first `days` days, written gzipped to a temp dir.
import { createReadStream, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { createGunzip, gzipSync } from "node:zlib";

export const REAL_TRACE = "../shared/data/servegen_client_rate_10min.csv.gz";

export async function makeSlice(keep: string[], days: number): Promise<{ dir: string; path: string }> {
  const want = new Set(keep);
  const out: string[] = [];
  const rl = createInterface({ input: createReadStream(REAL_TRACE).pipe(createGunzip()), crlfDelay: Infinity });
  let header = true;
  for await (const line of rl) {
    if (header) {
      out.push(line);
      header = false;
      continue;
    }
    const f = line.split(",", 4);
    if (want.has(`${f[0]}:${f[1]}`) && Number(f[2]) < days * 86400) out.push(line);
  }
  const dir = mkdtempSync(join(tmpdir(), "replay-test-"));
  const path = join(dir, "slice.csv.gz");
  writeFileSync(path, gzipSync(out.join("\n") + "\n"));
  return { dir, path };
}
