// Field paths, patches and managed-field ownership (server-side apply) for the test API server.
// A field path is a list of tokens in the FieldsV1 form the API server uses in managedFields:
// `f:<key>` for a map key and `k:{"name":"<n>"}` for an element of a list keyed by `name`
// (containers, initContainers, env: the lists of the fields we patch). Other lists are atomic.

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };
export type FieldPath = string[];

/** Lists merged by their `name` key (strategic merge patch and server-side apply). */
const KEYED_LISTS = new Set(["containers", "initContainers", "env", "ephemeralContainers", "containerStatuses"]);

export function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function clone<T>(v: T): T {
  return structuredClone(v);
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => deepEqual(x, bb[i]));
  }
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  return ka.length === kb.length && ka.every((k) => deepEqual((a as JsonObject)[k], (b as JsonObject)[k]));
}

function isKeyedList(key: string, v: unknown): v is JsonObject[] {
  return KEYED_LISTS.has(key) && Array.isArray(v) && v.every((e) => isObject(e) && typeof e.name === "string");
}

/** Metadata fields that are the server's, never owned by a manager. */
const SERVER_METADATA = new Set(["name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink", "generateName"]);

/** Leaf field paths of an object (apiVersion, kind, status and server-owned metadata excluded). */
export function leafPaths(obj: JsonObject): FieldPath[] {
  const out: FieldPath[] = [];
  const walk = (v: Json, prefix: FieldPath, key: string) => {
    if (isKeyedList(key, v)) {
      for (const e of v) walk(e, [...prefix, `k:${JSON.stringify({ name: e.name })}`], "");
      return;
    }
    if (isObject(v) && Object.keys(v).length > 0) {
      for (const [k, c] of Object.entries(v)) walk(c, [...prefix, `f:${k}`], k);
      return;
    }
    out.push(prefix);
  };
  for (const [k, v] of Object.entries(obj)) {
    if (k === "apiVersion" || k === "kind" || k === "status") continue;
    if (k === "metadata" && isObject(v)) {
      for (const [mk, mv] of Object.entries(v)) if (!SERVER_METADATA.has(mk)) walk(mv, ["f:metadata", `f:${mk}`], mk);
      continue;
    }
    walk(v, [`f:${k}`], k);
  }
  return out;
}

/** The value at a path, or undefined. */
export function getPath(obj: Json, path: FieldPath): Json | undefined {
  let cur: Json | undefined = obj;
  for (const t of path) {
    if (cur === undefined || cur === null) return undefined;
    if (t.startsWith("f:")) {
      if (!isObject(cur)) return undefined;
      cur = cur[t.slice(2)];
    } else {
      const name = (JSON.parse(t.slice(2)) as { name: string }).name;
      if (!Array.isArray(cur)) return undefined;
      cur = cur.find((e) => isObject(e) && e.name === name);
    }
  }
  return cur;
}

/** Removes the value at a path (and maps/elements left empty by it). */
export function deletePath(obj: JsonObject, path: FieldPath): void {
  const parents: (Json | undefined)[] = [obj];
  let cur: Json | undefined = obj;
  for (const t of path.slice(0, -1)) {
    cur = getPath(cur as Json, [t]);
    parents.push(cur);
  }
  const last = path[path.length - 1];
  const parent = parents[parents.length - 1];
  if (last.startsWith("f:") && isObject(parent)) delete parent[last.slice(2)];
  else if (Array.isArray(parent)) {
    const name = (JSON.parse(last.slice(2)) as { name: string }).name;
    const i = parent.findIndex((e) => isObject(e) && e.name === name);
    if (i >= 0) parent.splice(i, 1);
  }
}

/** `.spec.template.spec.containers[name="app"].resources.requests.cpu`: the path as the API prints it. */
export function pathString(path: FieldPath): string {
  return path.map((t) => (t.startsWith("f:") ? `.${t.slice(2)}` : `[name="${(JSON.parse(t.slice(2)) as { name: string }).name}"]`)).join("");
}

export function pathKey(path: FieldPath): string {
  return path.join("\u0000");
}

export function keyPath(key: string): FieldPath {
  return key.split("\u0000");
}

/** Renders a set of paths as FieldsV1 (`{"f:spec":{"f:replicas":{}}}`). */
export function toFieldsV1(paths: Iterable<FieldPath>): JsonObject {
  const root: JsonObject = {};
  for (const p of paths) {
    let cur = root;
    for (const t of p) {
      if (!isObject(cur[t])) cur[t] = {};
      cur = cur[t] as JsonObject;
      if (t.startsWith("k:")) cur["."] = {};
    }
  }
  return root;
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  const out: JsonObject = isObject(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/**
 * Strategic merge patch, for the fields we patch: maps merge, `null` deletes, lists keyed by
 * `name` (containers, env) merge element-wise by that key, other lists are replaced.
 * Also the merge server-side apply uses to combine an applied configuration with the live object.
 */
export function strategicMerge(target: Json | undefined, patch: Json, key = ""): Json {
  if (isKeyedList(key, patch) && Array.isArray(target)) {
    const out = clone(target) as Json[];
    for (const pe of patch) {
      const i = out.findIndex((e) => isObject(e) && e.name === pe.name);
      if (i >= 0) out[i] = strategicMerge(out[i], pe);
      else out.push(clone(pe));
    }
    return out;
  }
  if (!isObject(patch)) return clone(patch);
  const out: JsonObject = isObject(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith("$")) continue; // directives ($patch, $retainKeys) are not used by Foresight
    if (v === null) delete out[k];
    else out[k] = strategicMerge(out[k], v, k);
  }
  return out;
}

/** Paths whose value differs between two versions of an object (added, changed or removed). */
export function changedPaths(before: JsonObject, after: JsonObject): FieldPath[] {
  const seen = new Set<string>();
  const out: FieldPath[] = [];
  for (const p of [...leafPaths(after), ...leafPaths(before)]) {
    const k = pathKey(p);
    if (seen.has(k)) continue;
    seen.add(k);
    if (!deepEqual(getPath(before, p), getPath(after, p))) out.push(p);
  }
  return out;
}

export { parseQuantity } from "../allocator/kube/quantity.ts";
