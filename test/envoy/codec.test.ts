// The direct RateLimitResponse encoder against protobufjs (via proto-loader): random responses
// of the shape the server builds, encoded by both; proto-loader's deserializer must read ours
// back to exactly what it reads from its own encoding (defaults filled in).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { encodeRlsResponse, type RlsResponseObject } from "../../src/envoy/codec.ts";
import * as protoLoader from "@grpc/proto-loader";
import { protoRoot, RLS_LOADER_OPTIONS, RLS_PROTO_FILE, RLS_SERVICE_NAME } from "../../src/envoy/proto.ts";
import { mulberry32 } from "../../src/util/random.ts";

// proto3 scalars have no presence: protobufjs writes a set 0, we leave it out; both mean 0. So
// decode with defaults filled in, where absent and 0 read the same (as Envoy's C++ reads them).
const pkg = protoLoader.loadSync(RLS_PROTO_FILE, { ...RLS_LOADER_OPTIONS, defaults: true, includeDirs: [protoRoot()] });
const method = (pkg[RLS_SERVICE_NAME] as unknown as Record<string, { responseSerialize: (o: object) => Buffer; responseDeserialize: (b: Buffer) => object }>).ShouldRateLimit;

function randomResponse(rand: () => number): RlsResponseObject {
  const int = (max: number) => Math.floor(rand() * max);
  // Large values exercise multi-byte varints (uint32 up to 2^32-1, Duration seconds beyond it).
  const big = () => [0, 1, 127, 128, 16_383, 16_384, 2 ** 31, 2 ** 32 - 1][int(8)];
  const text = () => ["", "default", "pro", "plän-ü", "\"quoted\";q=1", "x".repeat(200)][int(6)];
  const statuses: RlsResponseObject["statuses"] = Array.from({ length: int(5) }, () => {
    const s: RlsResponseObject["statuses"][number] = {};
    if (rand() < 0.9) s.code = int(3);
    if (rand() < 0.7) s.current_limit = { name: text(), requests_per_unit: big(), unit: int(7) };
    if (rand() < 0.7) s.limit_remaining = big();
    if (rand() < 0.7) s.duration_until_reset = { seconds: rand() < 0.2 ? 3 * 2 ** 32 : int(4000), nanos: int(1e9) };
    return s;
  });
  return {
    overall_code: int(3),
    statuses,
    response_headers_to_add: Array.from({ length: int(5) }, () => ({ key: text() || "ratelimit", value: text() })),
  };
}

test("2000 random responses: proto-loader decodes ours exactly as its own encoding", () => {
  const rand = mulberry32(11);
  let bytesOurs = 0, bytesTheirs = 0;
  for (let i = 0; i < 2000; i++) {
    const r = randomResponse(rand);
    const ours = encodeRlsResponse(r);
    const theirs = method.responseSerialize(r);
    bytesOurs += ours.length;
    bytesTheirs += theirs.length;
    assert.equal(method.responseDeserialize(ours), method.responseDeserialize(theirs), `response ${i}: ${JSON.stringify(r)}`);
  }
  // Ours leaves proto3 zeros out, so it is never longer.
  assert.ok(bytesOurs <= bytesTheirs, `${bytesOurs} > ${bytesTheirs}`);
});

test("an empty response and one status without anything set", () => {
  for (const r of [{ overall_code: 0, statuses: [], response_headers_to_add: [] }, { overall_code: 1, statuses: [{}], response_headers_to_add: [] }] as RlsResponseObject[]) {
    assert.equal(method.responseDeserialize(encodeRlsResponse(r)), method.responseDeserialize(method.responseSerialize(r)));
  }
});

test.run();
