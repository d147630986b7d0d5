// Loads Foresight's own declaration of Envoy's RLS v3 API (proto/ at the package root, found the
// same way from src/ under tsx and from the bundled dist/cli.js) with @grpc/proto-loader.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as protoLoader from "@grpc/proto-loader";
import type { ServiceDefinition, MethodDefinition } from "@grpc/proto-loader";
import { RlsProtoLoadError } from "./errors.ts";
import { encodeRlsResponse, type RlsResponseObject } from "./codec.ts";

/** Fully qualified name of the service Envoy's ratelimit filter calls. */
export const RLS_SERVICE_NAME = "envoy.service.ratelimit.v3.RateLimitService";
/** The RLS .proto file, relative to the proto root. */
export const RLS_PROTO_FILE = "envoy/service/ratelimit/v3/rls.proto";

/**
 * proto-loader options: field names as on the wire (snake_case, like Envoy's docs), enums as
 * numbers, uint64 as JS numbers (hits_addend <= 1e9), absent fields left out (so a missing
 * per-descriptor hits_addend wrapper is told apart from 0) but repeated fields always arrays.
 */
export const RLS_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: Number,
  defaults: false,
  arrays: true,
  oneofs: true,
};

/** The folder holding the .proto files: `<package root>/proto`. */
export function protoRoot(from: string = import.meta.url): string {
  let dir = dirname(fileURLToPath(from));
  for (;;) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "proto", RLS_PROTO_FILE))) return join(dir, "proto");
    const up = dirname(dir);
    if (up === dir) throw new RlsProtoLoadError(`no proto/${RLS_PROTO_FILE} in a package above ${fileURLToPath(from)}`);
    dir = up;
  }
}

/** What the server's deserializer returns for bytes that are not a RateLimitRequest. */
export interface UndecodableRequest {
  readonly undecodable: string;
}

let cached: protoLoader.PackageDefinition | undefined;

/** The package definition of the RLS API (loaded once per process). */
export function loadRlsPackage(): protoLoader.PackageDefinition {
  if (cached) return cached;
  const root = protoRoot();
  try {
    cached = protoLoader.loadSync(RLS_PROTO_FILE, { ...RLS_LOADER_OPTIONS, includeDirs: [root] });
  } catch (cause) {
    throw new RlsProtoLoadError(`cannot load ${join(root, RLS_PROTO_FILE)}: ${(cause as Error).message}`, { cause });
  }
  return cached;
}

/**
 * The RateLimitService definition for a server. Its request deserializer never throws: bytes
 * that do not decode become an {@link UndecodableRequest}, which the handler answers with
 * INVALID_ARGUMENT (grpc-js would otherwise answer INTERNAL). Responses are written by
 * {@link encodeRlsResponse} (the shape the server builds), not protobufjs.
 */
export function rlsServerDefinition(): ServiceDefinition {
  const def = loadRlsPackage()[RLS_SERVICE_NAME] as ServiceDefinition;
  const method = def.ShouldRateLimit as MethodDefinition<object, object>;
  const decode = method.requestDeserialize;
  return {
    ShouldRateLimit: {
      ...method,
      requestDeserialize: (buf: Buffer) => {
        try {
          return decode(buf);
        } catch (e) {
          return { undecodable: (e as Error).message } satisfies UndecodableRequest;
        }
      },
      responseSerialize: (r: object) => encodeRlsResponse(r as RlsResponseObject),
    },
  };
}
