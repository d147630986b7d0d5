// isRevisionConflict against a real server: the one classification leases, the config store and
// the user directory rely on for compare-and-set writes.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { connect } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { NatsServer } from "../../src/nats/server.ts";
import { isRevisionConflict } from "../../src/nats/errors.ts";

/** The error `fn` rejects with (fails the test if it resolves). */
async function rejection(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new assert.Assertion({ message: "expected a rejection" } as never);
}

test("KV create of an existing key and update at a stale revision are revision conflicts; other failures are not", async () => {
  const srv = await NatsServer.start();
  const nc = await connect({ servers: srv.url });
  try {
    const kv = await new Kvm(nc).create("conflicts", { history: 1 });
    const r1 = await kv.create("k", "a");
    const r2 = await kv.update("k", "b", r1);
    assert.ok(r2 > r1);
    assert.ok(isRevisionConflict(await rejection(() => kv.create("k", "c"))), "create of an existing key");
    assert.ok(isRevisionConflict(await rejection(() => kv.update("k", "c", r1))), "update at a stale revision");
    // Not conflicts: an invalid key (client-side), and plain errors.
    assert.not.ok(isRevisionConflict(await rejection(async () => kv.put("bad key*", "x"))));
    assert.not.ok(isRevisionConflict(new Error("wrong last sequence")), "a message alone is not a conflict");
    assert.not.ok(isRevisionConflict(undefined));
    assert.is((await kv.get("k"))?.string(), "b", "neither conflicting write changed the value");
  } finally {
    await nc.close();
    await srv.dispose();
  }
});

test.run();
