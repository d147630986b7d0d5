/**
 * INTERIM, to be deleted: stand-ins for policy modules that are being written on other branches
 * (src/allocator/policy.ts, src/throttle/grants.ts, src/envoy/fixed-window.ts). They let the
 * harness run end to end until the live modules are merged; the replay's figures are only ever
 * reported with the live ones (adapters.ts).
 */
import { HpaRecommender } from "../allocator/hpa.ts";
import { normalQuantile } from "../engine/options.ts";
import type { FixedWindowFactory, ForesightAllocatorFactory, GrantThrottleFactory } from "./ports.ts";

export const interimForesight: ForesightAllocatorFactory = (o) => {
  const floor = new HpaRecommender({ capacityPerReplicaPerSec: o.replicaRatePerSec, targetUtilization: o.reactiveTarget, initialReplicas: o.initialReplicas });
  const z = normalQuantile(o.settings.quantile);
  const recent: { t: number; r: number }[] = [];
  return {
    observe: (t, r) => floor.observe(t, r),
    decide(nowMs, u, existing) {
      let m = 0;
      let v = 0;
      for (let i = 0; i < u.count; i++) {
        m += u.meanPerSec[i];
        const s = (u.upperPerSec[i] - u.meanPerSec[i]) / z;
        v += s * s;
      }
      const bound = (m + z * Math.sqrt(v)) * (1 + o.settings.headroom);
      let pred = Math.ceil(bound / o.replicaRatePerSec);
      recent.push({ t: nowMs, r: pred });
      while (recent[0].t <= nowMs - 300_000) recent.shift();
      for (const x of recent) pred = Math.max(pred, x.r);
      const reactive = floor.recommend(nowMs, undefined, existing).replicas;
      return { replicas: Math.max(1, pred, reactive), predictiveReplicas: pred, reactiveReplicas: reactive };
    },
  };
};

export const interimFixedWindow: FixedWindowFactory = ({ quotaPerWindow, windowSec }) => {
  const used = new Float64Array(quotaPerWindow.length);
  let win = -1;
  return {
    admit(t, arr, adm) {
      const w = Math.floor(t / windowSec);
      if (w !== win) (win = w), used.fill(0);
      for (let i = 0; i < arr.length; i++) {
        const left = Math.max(0, quotaPerWindow[i] - used[i]);
        adm[i] = Math.min(arr[i], left);
        used[i] += arr[i];
      }
    },
  };
};

export const interimGrants: GrantThrottleFactory = ({ users, burstFactor }) => {
  const g = new Float64Array(users);
  const tokens = new Float64Array(users).fill(Infinity);
  return {
    update(_t, u, cap) {
      let s = 0;
      for (let i = 0; i < u.count; i++) s += u.upperPerSec[i];
      for (let i = 0; i < u.count; i++) g[i] = Math.max(u.upperPerSec[i], s > 0 ? (cap * u.upperPerSec[i]) / s : 0);
    },
    admit(_t, arr, adm, load, cap) {
      const short = load >= cap;
      for (let i = 0; i < arr.length; i++) {
        const rate = short ? g[i] : Infinity;
        tokens[i] = Math.min(tokens[i] + rate, rate * burstFactor);
        if (!(tokens[i] === tokens[i])) tokens[i] = Infinity;
        adm[i] = Math.min(arr[i], tokens[i]);
        tokens[i] -= adm[i];
      }
    },
  };
};
