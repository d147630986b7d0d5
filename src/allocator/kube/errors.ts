// One error class per way a Kubernetes request fails, classified where the answer enters
// (client.ts): callers branch with `instanceof`, never on message text.
import { ApiException } from "@kubernetes/client-node";

/** The request an error belongs to: enough to name it and the RBAC rule it needs. */
export interface KubeRequest {
  verb: "get" | "list" | "patch" | "update" | "create";
  /** API group ("" = core). */
  group: string;
  resource: string;
  /** "" when none. */
  subresource: string;
  namespace: string;
  /** "" for collection requests. */
  name: string;
}

/** `deployments/scale in API group "apps"`. */
export function describeRequest(r: KubeRequest): string {
  const res = r.subresource ? `${r.resource}/${r.subresource}` : r.resource;
  return `${r.verb} ${res}${r.name ? ` "${r.name}"` : ""} (API group "${r.group}") in namespace "${r.namespace}"`;
}

/** The meta/v1 Status the server answered, parsed from the error body (undefined if none). */
export interface ServerStatus {
  code?: number;
  reason?: string;
  message?: string;
  details?: { causes?: { reason?: string; message?: string; field?: string }[]; retryAfterSeconds?: number };
}

/** Base of every Kubernetes request failure. */
export class KubeRequestError extends Error {
  override name = "KubeRequestError";
  constructor(message: string, readonly request: KubeRequest, readonly code: number, readonly status?: ServerStatus, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** 409 on a resourceVersion precondition: someone else wrote first; re-read and retry. */
export class ResourceVersionConflictError extends KubeRequestError {
  override name = "ResourceVersionConflictError";
}

/** One field another manager owns (server-side apply conflict). */
export interface FieldOwner {
  manager: string;
  field: string;
}

/** 409 from server-side apply: fields owned by another field manager. Never forced by default. */
export class FieldManagerConflictError extends KubeRequestError {
  override name = "FieldManagerConflictError";
  constructor(message: string, request: KubeRequest, status: ServerStatus | undefined, readonly owners: FieldOwner[], options?: { cause?: unknown }) {
    super(message, request, 409, status, options);
  }
}

/** 422: the server refused the change as invalid; the decision is dropped. `serverMessage` is what it said. */
export class InvalidDecisionError extends KubeRequestError {
  override name = "InvalidDecisionError";
  constructor(message: string, request: KubeRequest, status: ServerStatus | undefined, readonly serverMessage: string, options?: { cause?: unknown }) {
    super(message, request, 422, status, options);
  }
}

/** 403: RBAC denies the request; `missingRule` is the Role rule that would allow it. */
export class RbacForbiddenError extends KubeRequestError {
  override name = "RbacForbiddenError";
  constructor(message: string, request: KubeRequest, status: ServerStatus | undefined, readonly missingRule: { apiGroups: string[]; resources: string[]; verbs: string[] }, options?: { cause?: unknown }) {
    super(message, request, 403, status, options);
  }
}

/** 429 or 5xx: the server asks to come back later; `retryAfterMs` from Retry-After when it said so. */
export class ApiThrottledError extends KubeRequestError {
  override name = "ApiThrottledError";
  constructor(message: string, request: KubeRequest, code: number, status: ServerStatus | undefined, readonly retryAfterMs: number | undefined, options?: { cause?: unknown }) {
    super(message, request, code, status, options);
  }
}

/** 404: the object is gone; the pool is no longer acted on until its config changes. */
export class WorkloadGoneError extends KubeRequestError {
  override name = "WorkloadGoneError";
}

/** No answer (connection refused, reset, DNS, timeout): the current allocation is kept. */
export class KubeUnreachableError extends KubeRequestError {
  override name = "KubeUnreachableError";
}

/** Any other answer (400, 401, 415...): a bug or a misconfiguration; reported, decision dropped. */
export class KubeUnexpectedError extends KubeRequestError {
  override name = "KubeUnexpectedError";
}

function parseStatus(body: unknown): ServerStatus | undefined {
  if (body && typeof body === "object") return body as ServerStatus;
  if (typeof body !== "string" || !body) return undefined;
  try {
    return JSON.parse(body) as ServerStatus;
  } catch {
    return { message: body };
  }
}

function retryAfterMs(headers: Record<string, string> | undefined, status: ServerStatus | undefined): number | undefined {
  const h = headers?.["retry-after"] ?? headers?.["Retry-After"];
  if (h !== undefined) {
    const sec = Number(h);
    if (Number.isFinite(sec) && sec >= 0) return sec * 1000;
    const date = Date.parse(h);
    if (Number.isFinite(date)) return Math.max(0, date - Date.now());
  }
  const s = status?.details?.retryAfterSeconds;
  return typeof s === "number" && s >= 0 ? s * 1000 : undefined;
}

/** Turns whatever a client-node call threw into one of the classes above. */
export function classifyKubeError(err: unknown, req: KubeRequest): KubeRequestError {
  if (err instanceof KubeRequestError) return err;
  const what = describeRequest(req);
  if (err instanceof ApiException) {
    const e = err as ApiException<unknown>;
    const status = parseStatus(e.body);
    const msg = status?.message ?? String(e.message);
    switch (e.code) {
      case 409: {
        const causes = status?.details?.causes?.filter((c) => c.reason === "FieldManagerConflict") ?? [];
        if (causes.length) {
          const owners = causes.map((c) => ({ manager: /"([^"]+)"/.exec(c.message ?? "")?.[1] ?? "unknown", field: c.field ?? "" }));
          const list = owners.map((o) => `${o.field} is owned by field manager "${o.manager}"`).join("; ");
          return new FieldManagerConflictError(`server-side apply conflict on ${what}: ${list} (not forced; the owner must release the field, or set forceConflicts)`, req, status, owners, { cause: err });
        }
        return new ResourceVersionConflictError(`${what}: ${msg}`, req, 409, status, { cause: err });
      }
      case 422:
        return new InvalidDecisionError(`${what} refused as invalid: ${msg}`, req, status, msg, { cause: err });
      case 403: {
        const res = req.subresource ? `${req.resource}/${req.subresource}` : req.resource;
        const rule = { apiGroups: [req.group], resources: [res], verbs: [req.verb] };
        return new RbacForbiddenError(
          `forbidden: cannot ${req.verb} resource "${res}" in API group "${req.group}" in namespace "${req.namespace}"; the allocator's Role needs the rule {apiGroups: ["${req.group}"], resources: ["${res}"], verbs: ["${req.verb}"]} (server: ${msg})`,
          req, status, rule, { cause: err },
        );
      }
      case 404:
        return new WorkloadGoneError(`${what}: not found (${msg})`, req, 404, status, { cause: err });
      case 429:
      case 500:
      case 502:
      case 503:
      case 504:
        return new ApiThrottledError(`${what}: server answered ${e.code} (${msg})`, req, e.code, status, retryAfterMs(e.headers, status), { cause: err });
      default:
        return new KubeUnexpectedError(`${what}: server answered ${e.code} (${msg})`, req, e.code, status, { cause: err });
    }
  }
  return new KubeUnreachableError(`${what}: no answer from the Kubernetes API (${(err as Error)?.message ?? String(err)})`, req, 0, undefined, { cause: err });
}
