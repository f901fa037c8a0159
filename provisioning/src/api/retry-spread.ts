/** Bounds of the Retry-After of a 503 `overloaded`, seconds. */
export const MIN_RETRY_AFTER_S = 1;
export const MAX_RETRY_AFTER_S = 60;
/** Issuance time assumed before any issuance ended (a service that starts into a herd). */
const FIRST_DURATION_MS = 100;
/** Weight of the newest issuance in the running mean of their durations. */
const DURATION_WEIGHT = 0.1;
/** Retry-After is stretched by up to this fraction at random, so herds refused by several instances do not line up. */
const JITTER = 0.25;

export interface RetrySpreadOptions {
  now?: () => number;
  random?: () => number;
  /** Longest Retry-After, seconds; default 60. */
  maxSeconds?: number;
}

/**
 * Retry-After for requests refused because every issuance place is taken, spread so a
 * herd (all devices of a CA rotation, or back after an outage) comes back at the pace the
 * service issues rather than in one second. It keeps, per queue (renewals, and enrollments
 * that stop `renewalReserve` places earlier), the instant by which the work already
 * promised drains: the issuances in flight, then every retry already told to come back.
 * A refused request is told to come back after those, at the measured rate (places of its
 * queue ÷ the running mean issuance time), stretched by up to 25 % at random, in whole
 * seconds from 1 to 60. Past 60 s of backlog the rest are spread over the last half of
 * that bound (30-60 s) without pushing the queue further, and are refused and spread again
 * when they come back if the backlog is still there.
 */
export class RetrySpread {
  private meanDurationMs = FIRST_DURATION_MS;
  private readonly drainsAt = new Map<string, number>();
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly maxSeconds: number;
  private last = 0;

  constructor(opts: RetrySpreadOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
    this.maxSeconds = Math.max(MIN_RETRY_AFTER_S, opts.maxSeconds ?? MAX_RETRY_AFTER_S);
  }

  /** An admitted issuance ended after `durationMs` (admission to its answer). */
  ended(durationMs: number): void {
    if (!(durationMs >= 0)) return;
    this.meanDurationMs += DURATION_WEIGHT * (durationMs - this.meanDurationMs);
  }

  /** Issuances the service gets through per second with `places` of them at once, as measured. */
  ratePerSecond(places: number): number {
    return (Math.max(1, places) * 1000) / Math.max(1, this.meanDurationMs);
  }

  /** The Retry-After of the last refusal, seconds (0 before any). */
  get lastSeconds(): number {
    return this.last;
  }

  /**
   * Retry-After, whole seconds, for one more request refused from `queue` while `inFlight`
   * issuances run on its `places`. Each call books the refused request a place in the
   * queue's future.
   */
  refuse(queue: string, inFlight: number, places: number): number {
    const now = this.now();
    const perRequestMs = 1000 / this.ratePerSecond(places);
    const bound = now + this.maxSeconds * 1000;
    const start = Math.max(this.drainsAt.get(queue) ?? now, now + inFlight * perRequestMs);
    let seconds: number;
    if (start + perRequestMs > bound) {
      const half = Math.ceil(this.maxSeconds / 2);
      seconds = half + Math.floor(this.random() * (this.maxSeconds - half + 1));
      this.drainsAt.set(queue, Math.min(start, bound));
    } else {
      const at = start + perRequestMs;
      this.drainsAt.set(queue, at);
      seconds = Math.ceil(((at - now) / 1000) * (1 + JITTER * this.random()));
    }
    this.last = Math.min(this.maxSeconds, Math.max(MIN_RETRY_AFTER_S, seconds));
    return this.last;
  }
}
