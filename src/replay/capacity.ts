/**
 * The replay's capacity and service model, per pool:
 * - replicas: a decision sets the desired count; a scale-up's new replicas are ready `startDelaySec`
 *   after the decision; a scale-down is immediate and cancels pending (starting) replicas first,
 *   newest first; every replica that exists, starting or ready, is billed;
 * - service: per second, capacity = ready replicas × R requests (fluid); one FIFO queue, oldest
 *   first; a request not served within its arrival second or the next `maxWaitSec` seconds is dropped.
 */

/** Replicas of one pool: ready ones and pending ones with the second they become ready. */
export class ReplicaSet {
  ready: number;
  /** Ready times (s) of pending replicas, ascending. */
  private pending: number[] = [];
  /** Scale-up and scale-down decisions that changed the count. */
  scaleUps = 0;
  scaleDowns = 0;

  constructor(initialReady: number) {
    this.ready = initialReady;
  }

  /** Every existing replica (starting or ready): what is billed. */
  get existing(): number {
    return this.ready + this.pending.length;
  }

  get starting(): number {
    return this.pending.length;
  }

  /** Moves pending replicas whose ready time is at or before `tSec` to ready. */
  advance(tSec: number): void {
    let k = 0;
    while (k < this.pending.length && this.pending[k] <= tSec) k++;
    if (k > 0) {
      this.ready += k;
      this.pending.splice(0, k);
    }
  }

  /** Applies a decision at `tSec`: returns +1 (scaled up), -1 (down) or 0. */
  set(desired: number, tSec: number, startDelaySec: number): number {
    const want = Math.max(0, Math.round(desired));
    const have = this.existing;
    if (want > have) {
      for (let i = have; i < want; i++) this.pending.push(tSec + startDelaySec);
      this.scaleUps++;
      return 1;
    }
    if (want < have) {
      let cut = have - want;
      const fromPending = Math.min(cut, this.pending.length);
      this.pending.length -= fromPending; // newest pending go first
      cut -= fromPending;
      this.ready -= cut;
      this.scaleDowns++;
      return -1;
    }
    return 0;
  }
}

/**
 * Fluid FIFO queue with a maximum wait: cohort k (arrivals of one second) can be served in its own
 * second and the next `maxWaitSec`; what is left after that is dropped. `step` serves one second.
 */
export class FluidQueue {
  /** Unserved remainder of the last `maxWaitSec` cohorts, oldest first. */
  private readonly left: Float64Array;
  /** Arrivals and served amount of those cohorts (to report a cohort when it closes). */
  private readonly arrived: Float64Array;
  private readonly served: Float64Array;
  readonly maxWaitSec: number;
  /** Cohort that closed in the last step: its arrivals and how many of them were served in time. */
  closedArrivals = 0;
  closedServed = 0;
  /** Requests served in the last step (any cohort). */
  servedNow = 0;

  constructor(maxWaitSec = 2) {
    if (!(Number.isInteger(maxWaitSec) && maxWaitSec >= 0)) throw new RangeError(`maxWaitSec must be an integer >= 0 (got ${maxWaitSec})`);
    this.maxWaitSec = maxWaitSec;
    this.left = new Float64Array(maxWaitSec + 1);
    this.arrived = new Float64Array(maxWaitSec + 1);
    this.served = new Float64Array(maxWaitSec + 1);
  }

  /** Requests still waiting after the last step that can be served in the next one. */
  get backlog(): number {
    let s = 0;
    for (let i = 0; i < this.maxWaitSec; i++) s += this.left[i];
    return s;
  }

  /**
   * One second: `arrivals` join, `capacity` requests are served oldest cohort first. Afterwards
   * `closedArrivals`/`closedServed` describe the cohort that arrived `maxWaitSec` seconds ago (it
   * can no longer be served), and `servedNow` what was served in this second.
   */
  step(arrivals: number, capacity: number): void {
    const W = this.maxWaitSec;
    const L = this.left;
    // Shift: index W is the oldest (arrived W seconds ago), index 0 is this second's cohort.
    for (let i = W; i > 0; i--) {
      L[i] = L[i - 1];
      this.arrived[i] = this.arrived[i - 1];
      this.served[i] = this.served[i - 1];
    }
    L[0] = arrivals;
    this.arrived[0] = arrivals;
    this.served[0] = 0;
    let cap = capacity;
    let now = 0;
    for (let i = W; i >= 0 && cap > 0; i--) {
      const s = L[i] < cap ? L[i] : cap;
      L[i] -= s;
      this.served[i] += s;
      cap -= s;
      now += s;
    }
    this.servedNow = now;
    this.closedArrivals = this.arrived[W];
    this.closedServed = this.served[W];
  }

  /** Share of the cohort that closed in the last step that was served in time (1 when it was empty). */
  get closedFraction(): number {
    return this.closedArrivals > 0 ? this.closedServed / this.closedArrivals : 1;
  }
}
