// The peer of the check() benchmark: the same rule and token-bucket maths as ThrottleClient.check
// (one gateway, share 1), written the plain way: a Map from user key to an object per user.
// The bench checks both give the same decisions on the same input before timing them.
import type { RateLimiter, ThrottleDecision, ThrottleReason, ThrottleUse } from "../src/throttle/decision.ts";
import type { PlanLimit } from "../src/throttle/grants.ts";

interface PeerGrant { u: number; g: number; p: number; ut: number; gt: number; pt: number; pool: number; plan: number }
interface PeerUser { tokens: number; tokTokens: number; last: number; win: number; wcount: number; prev: number; part: number; grant?: PeerGrant }

export class MapThrottle implements RateLimiter {
  readonly users = new Map<string, PeerUser>();
  readonly leaseUntilMs: Float64Array;
  pressure = new Float32Array(1);
  poolUntilMs = 0;
  private readonly planIdx = new Map<string, number>();
  constructor(
    private readonly planNames: string[],
    private readonly plans: PlanLimit[],
    private readonly safe: PlanLimit[],
    private readonly burst: number,
    private readonly partitions: number,
    private readonly partitionOf: (user: string) => number,
    private readonly now: () => number = Date.now,
  ) {
    planNames.forEach((n, i) => this.planIdx.set(n, i));
    this.leaseUntilMs = new Float64Array(partitions);
  }

  setGrant(user: string, grant: PeerGrant): void {
    this.userOf(user, this.now()).grant = grant;
  }

  private userOf(user: string, now: number): PeerUser {
    let u = this.users.get(user);
    if (!u) {
      u = { tokens: Infinity, tokTokens: Infinity, last: now, win: now, wcount: 0, prev: 0, part: this.partitionOf(user) };
      this.users.set(user, u);
    }
    return u;
  }

  check(user: string, use: ThrottleUse, plan?: string): ThrottleDecision {
    const now = this.now();
    const s = this.userOf(user, now);
    const gr = s.grant;
    let pi = gr ? gr.plan : 0;
    if (plan !== undefined) pi = this.planIdx.get(plan) ?? 0;
    if (now - s.win >= 1000) {
      const elapsed = now - s.win;
      const rate = (s.wcount * 1000) / elapsed;
      s.win = now;
      s.wcount = 0;
      s.prev = elapsed < 2000 ? rate : 0;
    }
    s.wcount += use.requests;
    let rate: number, rateTok: number, reason: ThrottleReason;
    let short = false;
    if (now >= this.leaseUntilMs[s.part]) {
      rate = this.safe[pi].requestsPerSec;
      rateTok = this.safe[pi].tokensPerSec ?? Infinity;
      reason = "safe-limit";
    } else {
      const pressure = now < this.poolUntilMs ? this.pressure[gr ? gr.pool : 0] : 1;
      const planR = plan !== undefined || !gr ? this.plans[pi].requestsPerSec : gr.p;
      const planT = plan !== undefined || !gr ? this.plans[pi].tokensPerSec ?? Infinity : gr.pt;
      const u = gr ? gr.u : 0;
      const over = Math.max(s.wcount, s.prev) > u;
      if (pressure < 1) {
        rate = planR;
        rateTok = planT;
        reason = over ? "pool-has-spare" : "within-forecast";
      } else {
        short = true;
        rate = gr ? Math.min(planR, gr.g) : Math.min(planR, this.safe[pi].requestsPerSec);
        rateTok = gr ? Math.min(planT, gr.gt) : Math.min(planT, this.safe[pi].tokensPerSec ?? Infinity);
        reason = over ? "over-forecast-pool-short" : "within-forecast";
      }
    }
    const cap = rate * this.burst, capTok = rateTok * this.burst;
    const elapsed = now - s.last;
    if (elapsed > 0) {
      s.tokens += (elapsed * rate) / 1000;
      s.tokTokens += (elapsed * rateTok) / 1000;
      s.last = now;
    }
    if (s.tokens > cap) s.tokens = cap;
    if (s.tokTokens > capTok) s.tokTokens = capTok;
    const need = Math.min(use.tokens, capTok);
    const deny = s.tokens < use.requests || s.tokTokens < need;
    let retryAfterMs = 0;
    if (deny) {
      if (reason !== "safe-limit") reason = short ? "over-forecast-pool-short" : "plan-limit";
      const wr = s.tokens < use.requests ? (rate > 0 ? ((use.requests - s.tokens) * 1000) / rate : Infinity) : 0;
      const wt = s.tokTokens < need ? (rateTok > 0 ? ((need - s.tokTokens) * 1000) / rateTok : Infinity) : 0;
      retryAfterMs = Math.min(3_600_000, Math.ceil(Math.max(wr, wt)));
    } else {
      s.tokens -= use.requests;
      s.tokTokens -= use.tokens;
    }
    const t = s.tokens > 0 ? s.tokens : 0;
    return {
      allowed: !deny, wouldDeny: deny, limit: Math.floor(cap), remaining: Math.floor(t),
      resetMs: rate > 0 ? Math.ceil(((cap - t) * 1000) / rate) : 0, retryAfterMs, windowMs: this.burst * 1000, reason,
    };
  }
}
