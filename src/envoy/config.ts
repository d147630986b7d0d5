// From the validated configuration to the RLS server's parts (pure; the CLI and tests use it).
import type { ForesightConfig } from "../config/schema.ts";
import { FixedWindowLimiter, type FixedWindowPlanLimit } from "./fixed-window.ts";
import type { RateLimiterFactory } from "./limiter.ts";
import type { DescriptorMappingOptions } from "./mapping.ts";

/** The descriptor mapping of `config.envoy.descriptors`. */
export function mappingFromConfig(config: ForesightConfig): DescriptorMappingOptions {
  const d = config.envoy.descriptors;
  return {
    rules: d.rules,
    defaultPlan: d.defaultPlan,
    defaultPool: d.defaultPool,
    hitsAddend: d.hitsAddend,
    poolHitsAddend: d.poolHitsAddend,
    maxDescriptors: d.maxDescriptors,
  };
}

/**
 * Per-plan fixed-window limits: `envoy.fixedWindow.plans` where given, else the plan's
 * `throttle.safeLimits` scaled to the window (requestsPerSec × windowMs / 1000, at least 1).
 */
export function fixedWindowPlans(config: ForesightConfig): Record<string, FixedWindowPlanLimit> {
  const windowSec = config.envoy.fixedWindow.windowMs / 1000;
  const plans: Record<string, FixedWindowPlanLimit> = {};
  for (const [name, s] of Object.entries(config.throttle.safeLimits)) {
    plans[name] = {
      requestsPerWindow: Math.max(1, Math.floor(s.requestsPerSec * windowSec)),
      tokensPerWindow: s.tokensPerSec === undefined ? undefined : Math.max(1, Math.floor(s.tokensPerSec * windowSec)),
    };
  }
  return { ...plans, ...config.envoy.fixedWindow.plans };
}

/** The fixed-window limiter the configuration describes. */
export function fixedWindowFromConfig(config: ForesightConfig, now?: () => number): FixedWindowLimiter {
  return new FixedWindowLimiter({
    windowMs: config.envoy.fixedWindow.windowMs,
    plans: fixedWindowPlans(config),
    defaultPlan: config.envoy.descriptors.defaultPlan,
    now,
  });
}

/** The limiter factory `foresight rls` uses unless given another (the fixed-window baseline). */
export const fixedWindowLimiterFactory: RateLimiterFactory<ForesightConfig> = (config) => fixedWindowFromConfig(config);
