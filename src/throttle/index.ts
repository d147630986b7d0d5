// Public API of the throttle component: grant policy, wire format, grant service, gateway client, HTTP middleware.
export * from "./decision.ts";
export * from "./grants.ts";
export * from "./wire.ts";
export { UserTable, UserTableFullError } from "./table.ts";
export * from "./client.ts";
export * from "./service.ts";
export * from "./middleware.ts";
