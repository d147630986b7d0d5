// Kubernetes API test server (see server.ts).
export * from "./server.ts";
export * from "./status.ts";
export { parseQuantity } from "./fields.ts";
