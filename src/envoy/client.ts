// A grpc-js client of the RLS API built from the same .proto files (tests, the bench, and
// anyone checking a running `foresight rls` by hand).
import * as grpc from "@grpc/grpc-js";
import { loadRlsPackage, RLS_SERVICE_NAME } from "./proto.ts";

/** RateLimitRequest as the client sends it (snake_case). */
export interface RlsRequest {
  domain: string;
  descriptors: {
    entries: { key: string; value: string }[];
    limit?: { requests_per_unit: number; unit: number };
    hits_addend?: { value: number };
  }[];
  hits_addend?: number;
}

/** RateLimitResponse as the client receives it (absent fields left out). */
export interface RlsResponse {
  overall_code?: number;
  statuses: {
    code?: number;
    current_limit?: { name?: string; requests_per_unit?: number; unit?: number };
    limit_remaining?: number;
    duration_until_reset?: { seconds?: number; nanos?: number };
  }[];
  response_headers_to_add: { key: string; value: string }[];
  request_headers_to_add: { key: string; value: string }[];
}

export type RlsClient = grpc.Client & {
  ShouldRateLimit(req: RlsRequest, cb: (err: grpc.ServiceError | null, res?: RlsResponse) => void): grpc.ClientUnaryCall;
  ShouldRateLimit(req: RlsRequest, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: RlsResponse) => void): grpc.ClientUnaryCall;
};

/** A client of RateLimitService at `address` ("host:port"), plaintext. */
export function createRlsClient(address: string, options?: grpc.ClientOptions): RlsClient {
  const def = loadRlsPackage()[RLS_SERVICE_NAME] as grpc.ServiceDefinition;
  const Ctor = grpc.makeGenericClientConstructor(def, "RateLimitService");
  return new Ctor(address, grpc.credentials.createInsecure(), options) as unknown as RlsClient;
}

/** One ShouldRateLimit call as a promise. */
export function shouldRateLimit(client: RlsClient, req: RlsRequest, opts: grpc.CallOptions = {}): Promise<RlsResponse> {
  return new Promise((resolve, reject) => client.ShouldRateLimit(req, opts, (err, res) => (err ? reject(err) : resolve(res!))));
}
