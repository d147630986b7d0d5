export { DashboardHub, DashboardAssetsMissingError, DEFAULT_HISTORY_POINTS, type DashboardHubOptions } from "./hub.ts";
export type { DashboardPoint, PoolPoint, TopUser } from "./types.ts";
