export interface BackoffOptions {
  /** First ceiling, ms. Default 1000. */
  initialDelayMs?: number;
  /** Largest ceiling, ms. Default 60000. */
  maxDelayMs?: number;
  /** Uniform [0, 1). Default Math.random; injected by tests. */
  random?: () => number;
}

/**
 * Capped exponential backoff with full jitter: attempt n waits uniformly in
 * [0, min(max, initial × 2^n)). Full jitter spreads a fleet that lost its broker at the
 * same instant over the whole window instead of moving the herd in lockstep.
 */
export class Backoff {
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  private readonly random: () => number;
  private attempt = 0;

  constructor(opts: BackoffOptions = {}) {
    this.initialDelayMs = opts.initialDelayMs ?? 1000;
    this.maxDelayMs = opts.maxDelayMs ?? 60_000;
    this.random = opts.random ?? Math.random;
    if (!(this.initialDelayMs > 0) || !(this.maxDelayMs >= this.initialDelayMs)) {
      throw new RangeError(`backoff needs 0 < initialDelayMs <= maxDelayMs (got ${this.initialDelayMs}, ${this.maxDelayMs})`);
    }
  }

  /** The ceiling of the next delay, ms. */
  ceilingMs(): number {
    // 2^attempt overflows to Infinity long before it matters; min() keeps it finite.
    return Math.min(this.maxDelayMs, this.initialDelayMs * 2 ** this.attempt);
  }

  /** The delay before the next attempt, ms; each call counts one more failure. */
  next(): number {
    const delay = Math.floor(this.random() * this.ceilingMs());
    this.attempt += 1;
    return delay;
  }

  /** After a success: the next failure starts from the initial ceiling again. */
  reset(): void {
    this.attempt = 0;
  }

  get failures(): number {
    return this.attempt;
  }
}
