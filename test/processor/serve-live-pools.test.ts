// `foresight serve` follows the pools in KV live: its demand partials carry the pool list of the
// running config revision, so the allocator (which follows the same revision) keeps accepting
// them after pools are added or removed, without restarting the processors.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { connect } from "@nats-io/transport-node";
import { NatsServer } from "../../src/nats/server.ts";
import { ConfigStore } from "../../src/config/index.ts";
import { decodeDemandPartial } from "../../src/allocator/kube/partials.ts";
import { killChild, spawnServe, waitFor, type ServeChild } from "./support.ts";

function pool(name: string): Record<string, unknown> {
  return { name, workload: { name }, costModel: { requestsPerSecPerReplica: 10 }, match: { default: name === "a" } };
}

test("a pool added in KV appears in the next partials; removed, it leaves them", async () => {
  const srv = await NatsServer.start();
  const nc = await connect({ servers: srv.url });
  let serve: ServeChild | undefined;
  try {
    const store = await ConfigStore.open(nc);
    let revision = await store.set({ pools: [pool("a")] }, 0);
    const seen: string[][] = [];
    nc.subscribe("sp.demand.*", { callback: (_e, m) => void seen.push(decodeDemandPartial(m.data).pools) });
    serve = await spawnServe(["--servers", srv.url, "--prefix", "sp", "--partitions", "1", "--tick-interval-ms", "200", "--http-port", "0", "--log-level", "info"]);
    const since = (n: number, want: string[]) => waitFor(`partials for [${want.join(", ")}]`, () => seen.slice(n).some((p) => p.join() === want.join()), 20_000);
    await since(0, ["a"]);
    let n = seen.length;
    revision = await store.set({ pools: [pool("a"), pool("b")] }, revision);
    await since(n, ["a", "b"]);
    n = seen.length;
    await store.set({ pools: [pool("b")] }, revision);
    await since(n, ["b"]);
    assert.ok(serve.output.some((l) => l.includes("config revision") && l.includes("applied")), "the revisions are logged as applied");
  } finally {
    await killChild(serve);
    await nc.close();
    await srv.dispose();
  }
});

test.run();
