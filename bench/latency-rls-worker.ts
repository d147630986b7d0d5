// The Envoy side of bench/latency.ts hop 5, in a worker thread: Envoy is not in the gateway's event
// loop, so its calls must not queue behind the system's work (or the system's behind them).
// Open loop at `ratePerSec`: each call's latency runs from its scheduled send time to its callback.
// Messages in: {warm} (calls scheduled from now on are timed), {stop} (stop sending, wait for the
// answers, reply {latenciesNs, sent, errors, overLimit}).
import { parentPort, workerData } from "node:worker_threads";
import { createRlsClient, type RlsRequest } from "../src/envoy/client.ts";
import { RlsCode } from "../src/envoy/server.ts";

const { port, ratePerSec, userKeys } = workerData as { port: number; ratePerSec: number; userKeys: string[] };
const client = createRlsClient(`127.0.0.1:${port}`);
const reqs = userKeys.map((u): RlsRequest => ({ domain: "foresight", descriptors: [{ entries: [{ key: "user_id", value: u }] }] }));
const latenciesNs: number[] = [];
let warm = false, stop = false, sent = 0, done = 0, errors = 0, overLimit = 0, seed = 7;
parentPort!.on("message", (m: string) => {
  if (m === "warm") warm = true;
  if (m === "stop") stop = true;
});
const startedAt = performance.now();
while (!stop) {
  const due = Math.floor(((performance.now() - startedAt) / 1000) * ratePerSec);
  for (; sent < due; sent++) {
    const scheduled = startedAt + (sent * 1000) / ratePerSec;
    const timed = warm;
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    client.ShouldRateLimit(reqs[seed % reqs.length], (err, res) => {
      done++;
      if (err) errors++;
      else if (res!.overall_code === RlsCode.OVER_LIMIT) overLimit++;
      if (timed && !err) latenciesNs.push(Math.max(1, Math.round((performance.now() - scheduled) * 1e6)));
    });
  }
  await new Promise((r) => setTimeout(r, 1));
}
const deadline = Date.now() + 30_000;
while (done < sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
client.close();
parentPort!.postMessage({ latenciesNs, sent, done, errors, overLimit });
