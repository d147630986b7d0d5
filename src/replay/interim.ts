/**
 * INTERIM, to be deleted: stand-ins for policy modules that are being written on other branches
 * (src/throttle/grants.ts, src/envoy/fixed-window.ts). They let the
 * harness run end to end until the live modules are merged; the replay's figures are only ever
 * reported with the live ones (adapters.ts).
 */
import type { FixedWindowFactory, GrantThrottleFactory } from "./ports.ts";

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
