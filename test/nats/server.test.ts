import { test } from "uvu";
import * as assert from "uvu/assert";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { NatsServer, NatsCluster } from "../../src/nats/server.ts";

test("single server: JetStream works and data survives a restart on the same port", async () => {
  const srv = await NatsServer.start();
  try {
    assert.ok(srv.port > 0);
    const port = srv.port;
    let nc = await connect({ servers: srv.url });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "T", subjects: ["t.>"] });
    await jetstream(nc).publish("t.a", "x");
    await nc.close();
    await srv.restart();
    assert.is(srv.port, port);
    nc = await connect({ servers: srv.url });
    const info = await (await jetstreamManager(nc)).streams.info("T");
    assert.is(info.state.messages, 1);
    await nc.close();
  } finally {
    await srv.dispose();
  }
});

test("cluster: an R3 stream accepts writes with one node down", async () => {
  const cluster = await NatsCluster.start(3);
  try {
    const nc = await connect({ servers: cluster.urls });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "R", subjects: ["r.>"], num_replicas: 3 });
    const js = jetstream(nc);
    await js.publish("r.1", "a");
    const victim = cluster.servers.find((s) => !nc.getServer().includes(String(s.port)))!;
    await victim.kill();
    // The stream's leader may have been on the victim: until a new one is elected a publish is
    // refused (503), so retry, with a deadline, as a real client does; the msgID keeps it single.
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        await js.publish("r.2", "b", { timeout: 2_000, msgID: "r2" });
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const info = await jsm.streams.info("R");
    assert.is(info.state.messages, 2);
    await nc.close();
  } finally {
    await cluster.dispose();
  }
});

test.run();
