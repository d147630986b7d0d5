// DirectoryIndex against a real nats-server: entries written through UserDirectory appear in the
// synchronous lookups, updates and deletes follow, a malformed value is counted and skipped, and
// after the server restarts on the same port the index still follows new writes. Every wait is
// for an index event, bounded; nothing sleeps a fixed time.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NatsServer } from "../../src/nats/server.ts";
import { UserDirectory } from "../../src/telemetry/directory.ts";
import { DirectoryIndex, type DirectoryIndexEvent } from "../../src/telemetry/directory-index.ts";
import { userHash, userHashHex } from "../../src/telemetry/hash.ts";
import { registerDirectoryIndexMetrics } from "../../src/telemetry/directory-index-metrics.ts";
import { Registry } from "prom-client";

const BUCKET = "dix-users";
let srv: NatsServer;
let nc: NatsConnection;
let dir: UserDirectory;
let index: DirectoryIndex;
/** Waiters for index events, checked after each event. */
const waiters: { pred: (e: DirectoryIndexEvent) => boolean; resolve: () => void }[] = [];

function onEntry(e: DirectoryIndexEvent): void {
  for (let i = waiters.length - 1; i >= 0; i--) {
    if (waiters[i].pred(e)) {
      waiters[i].resolve();
      waiters.splice(i, 1);
    }
  }
}

/** Resolves when the index reports an event of `key` of that kind (register before writing). */
function event(key: string, kind: DirectoryIndexEvent["kind"], timeoutMs = 15_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ${kind} event for ${key} within ${timeoutMs} ms`)), timeoutMs);
    waiters.push({ pred: (e) => e.key === key && e.kind === kind, resolve: () => (clearTimeout(t), resolve()) });
  });
}

const hexOf = (user: string) => userHashHex(userHash(user));
const planOf = (user: string) => index.planOf(userHash(user).lo, userHash(user).hi);
const segmentOf = (user: string) => index.segmentOf(userHash(user).lo, userHash(user).hi);

test.before(async () => {
  srv = await NatsServer.start();
  nc = await connect({ servers: srv.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  dir = await UserDirectory.open(nc, { bucket: BUCKET });
});
test.after(async () => {
  await index?.stop();
  await nc?.close().catch(() => undefined);
  await srv?.dispose();
});

test("loads the bucket's entries, then follows new ones; unknown users answer undefined", async () => {
  await dir.register(hexOf("early"), { user: "early", plan: "pro", segment: "smb", firstSeenMs: 1 });
  await dir.register(hexOf("bare"), { user: "bare", firstSeenMs: 1 });
  index = await DirectoryIndex.open(nc, { bucket: BUCKET, onEntry });
  await index.initialized();
  assert.is(planOf("early"), "pro");
  assert.is(segmentOf("early"), "smb");
  assert.is(planOf("bare"), undefined, "an entry without plan holds nothing");
  assert.is(planOf("nobody"), undefined);
  const users = Array.from({ length: 200 }, (_, i) => ({ user: `u${i}`, plan: i % 3 === 0 ? "enterprise" : "free", segment: i % 2 === 0 ? "edu" : undefined }));
  const last = event(hexOf("u199"), "put");
  for (const u of users) await dir.register(hexOf(u.user), { user: u.user, plan: u.plan, segment: u.segment, firstSeenMs: 2 });
  await last;
  for (const u of users) {
    assert.is(planOf(u.user), u.plan, `${u.user} plan`);
    assert.is(segmentOf(u.user), u.segment, `${u.user} segment`);
  }
  assert.is(index.stats().users, 201);
  assert.ok(index.stats().slots >= 201 * 4 / 3, "the table stays at most 3/4 full");
});

test("updates and deletes follow; a malformed value is counted, skipped and drops the old attributes", async () => {
  const kv = dir.kv;
  const k = hexOf("u3");
  let ev = event(k, "put");
  await kv.put(k, JSON.stringify({ user: "u3", plan: "pro", firstSeenMs: 2 }));
  await ev;
  assert.is(planOf("u3"), "pro");
  assert.is(segmentOf("u3"), undefined);
  ev = event(k, "delete");
  await kv.delete(k);
  await ev;
  assert.is(planOf("u3"), undefined, "a deleted entry is removed");
  const k6 = hexOf("u6");
  ev = event(k6, "delete");
  await kv.purge(k6);
  await ev;
  assert.is(planOf("u6"), undefined, "a purged entry is removed");
  // The other users kept their entries through the removals (backward-shift deletion).
  for (let i = 0; i < 200; i++) if (i !== 3 && i !== 6) assert.is(planOf(`u${i}`), i % 3 === 0 ? "enterprise" : "free", `u${i} after removals`);

  const before = index.stats().badEntries.value;
  const k9 = hexOf("u9");
  ev = event(k9, "bad");
  await kv.put(k9, "not json {");
  await ev;
  const kBad = hexOf("typed");
  ev = event(kBad, "bad");
  await kv.put(kBad, JSON.stringify({ user: "typed", plan: 7, firstSeenMs: 1 }));
  await ev;
  ev = event("not-a-hash", "bad");
  await kv.put("not-a-hash", JSON.stringify({ user: "x", plan: "pro", firstSeenMs: 1 }));
  await ev;
  const st = index.stats();
  assert.is(st.badEntries.value, before + 2);
  assert.is(st.badEntries.key, 1);
  assert.is(planOf("u9"), undefined, "the bucket holds a bad value for u9 now");
  assert.is(planOf("typed"), undefined);
  // Still following after the bad entries.
  ev = event(hexOf("after-bad"), "put");
  await dir.register(hexOf("after-bad"), { user: "after-bad", plan: "pro", firstSeenMs: 3 });
  await ev;
  assert.is(planOf("after-bad"), "pro");
  // The same counts on /metrics (read at scrape time, monotonic across scrapes).
  const registry = new Registry();
  registerDirectoryIndexMetrics(registry, () => index.stats());
  for (let scrape = 0; scrape < 2; scrape++) {
    const text = await registry.metrics();
    assert.match(text, new RegExp(`^foresight_directory_bad_entries_total\\{reason="value"\\} ${st.badEntries.value}$`, "m"), text);
    assert.match(text, /^foresight_directory_bad_entries_total\{reason="key"\} 1$/m);
    assert.match(text, new RegExp(`^foresight_directory_users ${index.stats().users}$`, "m"));
  }
});

test("after a server restart on the same port the index still follows new writes (and keeps what it had)", async () => {
  const restarts = index.stats().watchRestarts;
  await srv.restart();
  // Writes from the moment the client is back; the index's watch restarts from its last revision.
  const ev = event(hexOf("post-restart"), "put");
  for (let attempt = 0; ; attempt++) {
    try {
      await dir.register(hexOf("post-restart"), { user: "post-restart", plan: "enterprise", segment: "gov", firstSeenMs: 4 });
      break;
    } catch (err) {
      if (attempt > 100) throw err;
      await new Promise((r) => setTimeout(r, 100)); // JetStream not ready yet right after the restart
    }
  }
  await ev;
  assert.is(planOf("post-restart"), "enterprise");
  assert.is(segmentOf("post-restart"), "gov");
  assert.is(planOf("u0"), "enterprise", "entries loaded before the restart stay");
  assert.ok(index.stats().watchRestarts > restarts, "the watch was restarted");
  // A delete after the restart follows too.
  const del = event(hexOf("u0"), "delete");
  await dir.kv.delete(hexOf("u0"));
  await del;
  assert.is(planOf("u0"), undefined);
});

test("a reader that may not create the bucket waits for it: unknown until the owner creates it, then it follows", async () => {
  const bucket = "dix-later";
  const h = userHash("first-of-later");
  let seen!: () => void;
  const put = new Promise<void>((resolve) => (seen = resolve));
  const late = await DirectoryIndex.open(nc, { bucket, create: false, onEntry: (e) => e.key === userHashHex(h) && e.kind === "put" && seen() });
  try {
    assert.is(late.planOf(h.lo, h.hi), undefined);
    const owner = await UserDirectory.open(nc, { bucket });
    await owner.register(userHashHex(h), { user: "first-of-later", plan: "pro", firstSeenMs: 5 });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([put, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error("the entry never reached the waiting reader")), 15_000)))]);
    clearTimeout(timer);
    await late.initialized();
    assert.is(late.planOf(h.lo, h.hi), "pro");
  } finally {
    await late.stop();
  }
});

test.run();
