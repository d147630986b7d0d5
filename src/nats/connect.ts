// One place that turns Foresight's NATS connection settings into a live connection, so the
// processor, the publisher SDK, the config CLI and gateways all accept the same settings.
import { readFileSync } from "node:fs";
import {
  connect,
  credsAuthenticator,
  nkeyAuthenticator,
  type NatsConnection,
  type NodeConnectionOptions,
} from "@nats-io/transport-node";

/** NATS connection settings (the `nats.connection` section of the config). */
export interface NatsConnectionSettings {
  /** Server URLs, e.g. ["nats://127.0.0.1:4222"]. Default ["nats://127.0.0.1:4222"]. */
  servers?: string[];
  /** Connection name shown in the server's monitoring. Default "foresight". */
  name?: string;
  /** User for user/password authentication. */
  user?: string;
  /** Password for user/password authentication. */
  pass?: string;
  /** Token authentication. */
  token?: string;
  /** Path of a `.creds` file (JWT + NKey seed, decentralized auth). */
  credsFile?: string;
  /** Path of a file holding an NKey seed (`SU...`). */
  nkeySeedFile?: string;
  /** TLS: CA, client certificate and key files; `{}` alone requires TLS with system CAs. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string; handshakeFirst?: boolean };
  /** Reconnect forever by default (-1); the pipeline pauses instead of failing while disconnected. */
  maxReconnectAttempts?: number;
  /** Base wait between reconnect attempts, ms (the client adds jitter). Default 1000. */
  reconnectTimeWaitMs?: number;
  /** Connect / request timeout, ms. Default 5000. */
  timeoutMs?: number;
}

/** Default server list when none is configured. */
export const DEFAULT_NATS_SERVERS = ["nats://127.0.0.1:4222"];

/** Maps settings to the client's options (pure, so it is unit-testable). */
export function natsClientOptions(s: NatsConnectionSettings = {}): NodeConnectionOptions {
  const opts: NodeConnectionOptions = {
    servers: s.servers?.length ? s.servers : DEFAULT_NATS_SERVERS,
    name: s.name ?? "foresight",
    maxReconnectAttempts: s.maxReconnectAttempts ?? -1,
    reconnectTimeWait: s.reconnectTimeWaitMs ?? 1000,
    timeout: s.timeoutMs ?? 5000,
  };
  if (s.user !== undefined) {
    opts.user = s.user;
    opts.pass = s.pass;
  }
  if (s.token !== undefined) opts.token = s.token;
  if (s.credsFile) opts.authenticator = credsAuthenticator(readFileSync(s.credsFile));
  else if (s.nkeySeedFile) {
    opts.authenticator = nkeyAuthenticator(new TextEncoder().encode(readFileSync(s.nkeySeedFile, "utf8").trim()));
  }
  if (s.tls) opts.tls = { ...s.tls };
  return opts;
}

/** Connects with the given settings. */
export function connectNats(s: NatsConnectionSettings = {}): Promise<NatsConnection> {
  return connect(natsClientOptions(s));
}
