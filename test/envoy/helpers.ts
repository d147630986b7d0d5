// Shared pieces of the Envoy RLS tests: a health client from grpc-health-check's own proto, and a
// limiter whose calls wait until the test releases them (to hold calls in flight).
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { FixedWindowLimiter } from "../../src/envoy/fixed-window.ts";
import type { BatchRateLimiter, LimitCheck, ThrottleDecision } from "../../src/envoy/limiter.ts";

export type HealthClient = grpc.Client & {
  Check(req: { service: string }, cb: (err: grpc.ServiceError | null, res?: { status: string }) => void): void;
  Watch(req: { service: string }): grpc.ClientReadableStream<{ status: string }>;
};

export function healthClient(address: string): HealthClient {
  const def = protoLoader.loadSync(healthProtoPath, { keepCase: true, enums: String, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
  return new pkg.grpc.health.v1.Health(address, grpc.credentials.createInsecure()) as unknown as HealthClient;
}

export function healthCheck(c: HealthClient, service = ""): Promise<string> {
  return new Promise((resolve, reject) => c.Check({ service }, (err, res) => (err ? reject(err) : resolve(res!.status))));
}

/** A batch limiter over a FixedWindowLimiter whose answers wait for release(). */
export class GatedLimiter implements BatchRateLimiter {
  private readonly held: (() => void)[] = [];
  private readonly arrivals: { n: number; resolve: () => void }[] = [];
  failWith: Error | undefined;

  constructor(private readonly inner: FixedWindowLimiter) {}

  get waiting(): number {
    return this.held.length;
  }

  checkBatch(checks: readonly LimitCheck[]): Promise<ThrottleDecision[]> {
    return new Promise((resolve, reject) => {
      this.held.push(() => (this.failWith ? reject(this.failWith) : resolve(checks.map((c) => this.inner.check(c.user, c.use, c.plan)))));
      for (const a of this.arrivals.splice(0)) {
        if (this.held.length >= a.n) a.resolve();
        else this.arrivals.push(a);
      }
    });
  }

  /** Resolves once `n` calls are held. */
  arrived(n: number): Promise<void> {
    if (this.held.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.arrivals.push({ n, resolve }));
  }

  release(): void {
    for (const h of this.held.splice(0)) h();
  }
}
