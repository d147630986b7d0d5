export { buildLoadPlan, busiestClients, windowIntegral, LoadPlanError, type LoadPlan, type LoadPlanOptions } from "./plan.ts";
export { LoadDriver, type LoadDriverOptions, type LoadResult, type ClientOutcome } from "./driver.ts";
