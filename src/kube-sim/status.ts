// `Status` bodies as the Kubernetes API server returns them (meta/v1 Status): the same reasons,
// codes and message forms, so a client's error handling is tested against what a cluster says.

/** One cause of a failure (meta/v1 StatusCause). */
export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

/** meta/v1 Status. */
export interface KubeStatus {
  apiVersion: "v1";
  kind: "Status";
  metadata: Record<string, never>;
  status: "Success" | "Failure";
  message: string;
  reason: string;
  details?: { name?: string; group?: string; kind?: string; causes?: StatusCause[]; retryAfterSeconds?: number };
  code: number;
}

/** A failure the server answers with a Status body (thrown inside the server, never out of it). */
export class StatusError extends Error {
  override name = "StatusError";
  constructor(readonly status: KubeStatus, readonly headers: Record<string, string> = {}) {
    super(status.message);
  }
}

function failure(code: number, reason: string, message: string, details?: KubeStatus["details"]): KubeStatus {
  return { apiVersion: "v1", kind: "Status", metadata: {}, status: "Failure", message, reason, ...(details ? { details } : {}), code };
}

/** `deployments.apps` / `pods`: how the API names a resource of a group in messages. */
export function qualifiedResource(resource: string, group: string): string {
  return group ? `${resource}.${group}` : resource;
}

export function notFound(resource: string, group: string, name: string): StatusError {
  return new StatusError(failure(404, "NotFound", `${qualifiedResource(resource, group)} "${name}" not found`, { name, group, kind: resource }));
}

/** The path names no resource this server serves. */
export function pathNotFound(): StatusError {
  return new StatusError(failure(404, "NotFound", "the server could not find the requested resource", { causes: [{ reason: "UnexpectedServerResponse", message: "404 page not found" }] }));
}

/** The resourceVersion precondition failed (optimistic concurrency). */
export function resourceVersionConflict(resource: string, group: string, name: string): StatusError {
  return new StatusError(
    failure(409, "Conflict", `Operation cannot be fulfilled on ${qualifiedResource(resource, group)} "${name}": the object has been modified; please apply your changes to the latest version and try again`, {
      name,
      group,
      kind: resource,
    }),
  );
}

/** One field another manager owns with a different value. */
export interface FieldConflict {
  manager: string;
  /** The owning manager's apiVersion when it differs from the request's (shown as "using ..."). */
  apiVersion?: string;
  /** Dotted field path, e.g. `.spec.replicas`. */
  field: string;
}

/** A server-side apply conflict: message and causes name the owning managers, as the API server does. */
export function applyConflict(conflicts: FieldConflict[]): StatusError {
  const who = (c: FieldConflict) => `"${c.manager}"${c.apiVersion ? ` using ${c.apiVersion}` : ""}`;
  const n = conflicts.length;
  let message: string;
  if (n === 1) message = `Apply failed with 1 conflict: conflict with ${who(conflicts[0])}: ${conflicts[0].field}`;
  else {
    const byManager = new Map<string, string[]>();
    for (const c of conflicts) byManager.set(who(c), [...(byManager.get(who(c)) ?? []), c.field]);
    message = `Apply failed with ${n} conflicts: ` + [...byManager].map(([m, fields]) => `conflicts with ${m}:\n${fields.map((f) => `- ${f}`).join("\n")}`).join("\n");
  }
  return new StatusError(failure(409, "Conflict", message, { causes: conflicts.map((c) => ({ reason: "FieldManagerConflict", message: `conflict with ${who(c)}`, field: c.field })) }));
}

/** RBAC denied the request: the message form of the API server's authorizer. */
export function forbidden(user: string, verb: string, resource: string, subresource: string, group: string, namespace: string, name: string): StatusError {
  const res = subresource ? `${resource}/${subresource}` : resource;
  const subject = name ? `${qualifiedResource(resource, group)} "${name}"` : qualifiedResource(resource, group);
  const message = `${subject} is forbidden: User "${user}" cannot ${verb} resource "${res}" in API group "${group}" in the namespace "${namespace}"`;
  return new StatusError(failure(403, "Forbidden", message, { ...(name ? { name } : {}), group, kind: resource }));
}

export function unauthorized(): StatusError {
  return new StatusError(failure(401, "Unauthorized", "Unauthorized"));
}

/** A field failed validation (422). `kind` is the object's kind, e.g. "Deployment", group "apps". */
export function invalid(kind: string, group: string, name: string, causes: { field: string; message: string; reason?: string }[]): StatusError {
  const list = causes.map((c) => `${c.field}: ${c.message}`);
  const message = `${qualifiedResource(kind, group)} "${name}" is invalid: ${list.length === 1 ? list[0] : `[${list.join(", ")}]`}`;
  return new StatusError(
    failure(422, "Invalid", message, { name, group, kind, causes: causes.map((c) => ({ reason: c.reason ?? "FieldValueInvalid", message: c.message, field: c.field })) }),
  );
}

export function badRequest(message: string): StatusError {
  return new StatusError(failure(400, "BadRequest", message));
}

export function unsupportedMediaType(contentType: string): StatusError {
  return new StatusError(failure(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json; got ${contentType || "none"}`));
}

export function methodNotAllowed(method: string): StatusError {
  return new StatusError(failure(405, "MethodNotAllowed", `the server does not allow this method on the requested resource (${method})`));
}

/** 429 with Retry-After, as the API server's max-in-flight / priority-and-fairness filters answer. */
export function tooManyRequests(retryAfterSec: number): StatusError {
  return new StatusError(failure(429, "TooManyRequests", "Too many requests, please try again later.", { retryAfterSeconds: retryAfterSec }), { "retry-after": String(retryAfterSec) });
}

/** 5xx answers (500 InternalError, 503 ServiceUnavailable, 504 Timeout). */
export function serverError(code: 500 | 503 | 504, retryAfterSec?: number): StatusError {
  const reason = code === 500 ? "InternalError" : code === 503 ? "ServiceUnavailable" : "Timeout";
  const message = code === 500 ? "Internal error occurred: injected fault" : code === 503 ? "the server is currently unable to handle the request" : "the server was unable to return a response in the time allotted, but may still be processing the request";
  const headers: Record<string, string> = retryAfterSec !== undefined ? { "retry-after": String(retryAfterSec) } : {};
  return new StatusError(failure(code, reason, message, retryAfterSec !== undefined ? { retryAfterSeconds: retryAfterSec } : undefined), headers);
}
