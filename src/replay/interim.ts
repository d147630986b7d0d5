/**
 * INTERIM, to be deleted: a stand-in for a policy module that is being written on another branch
 * (src/envoy/fixed-window.ts). It lets the
 * harness run end to end until the live module is merged; the replay's figures are only ever
 * reported with the live ones (adapters.ts).
 */
import type { FixedWindowFactory } from "./ports.ts";

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

