/** Accuracy metrics of the evaluation protocol (see docs/forecasting.md). */

/** Mean |y[t] - y[t-m]| over t in [m, trainEnd): the in-sample seasonal-naive MAE (MASE scale). */
export function seasonalNaiveScale(y: ArrayLike<number>, trainEnd: number, m: number): number {
  let s = 0;
  let n = 0;
  for (let t = m; t < trainEnd; t++) {
    s += Math.abs(y[t] - y[t - m]);
    n++;
  }
  return n ? s / n : 0;
}

/** Running sums of one (model, horizon, client) over the test targets. */
export class ErrorAccumulator {
  n = 0;
  absErr = 0;
  smape = 0;
  exceed = 0;
  withUpper = 0;
  under = 0;
  actual = 0;
  add(actual: number, forecast: number, upper?: number): void {
    this.n++;
    const e = Math.abs(actual - forecast);
    this.absErr += e;
    const d = Math.abs(actual) + Math.abs(forecast);
    // 0/0 is a perfect forecast of an empty window: sMAPE 0.
    this.smape += d === 0 ? 0 : (200 * e) / d;
    if (upper !== undefined) {
      this.withUpper++;
      if (actual > upper) this.exceed++;
    }
    if (actual > forecast) this.under += actual - forecast;
    this.actual += actual;
  }
  get mae(): number {
    return this.n ? this.absErr / this.n : NaN;
  }
}

export function median(xs: number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const k = v.length >> 1;
  return v.length % 2 ? v[k] : (v[k - 1] + v[k]) / 2;
}

export function mean(xs: number[]): number {
  const v = xs.filter((x) => Number.isFinite(x));
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN;
}

/** Geometric mean of positive finite values (others are left out). */
export function geomean(xs: number[]): number {
  const v = xs.filter((x) => Number.isFinite(x) && x > 0);
  return v.length ? Math.exp(v.reduce((a, b) => a + Math.log(b), 0) / v.length) : NaN;
}
