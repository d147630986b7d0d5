// The "few lines in any language" claim, checked: the Python producer printed in
// docs/wire-format.md is extracted and run, and its frame must equal the TypeScript encoder's
// byte for byte (hashes, partition rule, field order, padding).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { decodeFrame, encodeEvents, partitionOf } from "../../src/telemetry/frame.ts";
import { userHash } from "../../src/telemetry/hash.ts";

const doc = readFileSync(new URL("../../docs/wire-format.md", import.meta.url), "utf8");
const snippet = /```python\n([\s\S]*?)```/.exec(doc)?.[1];

const users = ["alice", "bob", "é-ünïcode-user-with-a-long-key", "abc", "x"];

test("the documented Python producer builds the same bytes as encodeEvents", () => {
  assert.ok(snippet, "docs/wire-format.md has a ```python block");
  const driver = `
import sys
sys.stdout.buffer.write(frame([
    record("alice", 1_700_000_000_123, 120, 30, "/v1/chat", "10.0.0.1", "curl/8", 200, 41, 512),
    record("bob", 1_700_000_000_456, status=429, throttled=True, error=True),
    record("é-ünïcode-user-with-a-long-key", 1_700_000_000_789.5, 1, 2, "abc", "x", "yz", 500, 3, 4),
]))
`;
  let out: Buffer;
  try {
    out = execFileSync("python3", ["-c", snippet + driver], { stdio: ["ignore", "pipe", "pipe"], timeout: 20_000 });
  } catch (err) {
    throw new Error(`python3 failed: ${(err as Error).message}\n${String((err as { stderr?: Buffer }).stderr ?? "")}`);
  }
  const ts = encodeEvents([
    { user: "alice", timeMs: 1_700_000_000_123, inputTokens: 120, outputTokens: 30, route: "/v1/chat", sourceIp: "10.0.0.1", userAgent: "curl/8", status: 200, latencyMs: 41, bytes: 512 },
    { user: "bob", timeMs: 1_700_000_000_456, status: 429, throttled: true, error: true },
    { user: "é-ünïcode-user-with-a-long-key", timeMs: 1_700_000_000_789.5, inputTokens: 1, outputTokens: 2, route: "abc", sourceIp: "x", userAgent: "yz", status: 500, latencyMs: 3, bytes: 4 },
  ]);
  const py = new Uint8Array(out);
  assert.is(decodeFrame(py).count, 3);
  assert.equal(py, ts);
});

test("the documented partition rule matches partitionOf", () => {
  const r = execFileSync("python3", ["-c", snippet + `\nfor u in ${JSON.stringify(users)}:\n    print(user_hash(u)[0] % 8)\n`], {
    encoding: "utf8",
    timeout: 20_000,
  });
  assert.equal(r.trim().split("\n").map(Number), users.map((u) => partitionOf(userHash(u).lo, 8)));
});

test.run();
