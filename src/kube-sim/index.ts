// Kubernetes API test server (see server.ts).
export {
  type AuditEntry,
  type Fault,
  type FaultMatch,
  type KubeObject,
  KubeSim,
  type KubeSimOptions,
  parseSelector,
  type RbacRule,
  type RbacTable,
  type WriteRecord,
} from "./server.ts";
export {
  applyConflict,
  badRequest,
  type FieldConflict,
  forbidden,
  invalid,
  type KubeStatus,
  methodNotAllowed,
  notFound,
  pathNotFound,
  qualifiedResource,
  resourceVersionConflict,
  serverError,
  type StatusCause,
  StatusError,
  tooManyRequests,
  unauthorized,
  unsupportedMediaType,
} from "./status.ts";
export { parseQuantity } from "./fields.ts";
