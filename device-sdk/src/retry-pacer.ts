import { Backoff } from './backoff.js';
import type { DeviceError } from './errors.js';

export interface RetryPacerOptions {
  /** The backoff for network trouble (default 1 s doubling to 60 s, full jitter). */
  backoff: Backoff;
  /** Ceiling for a configuration error, ms. Default 5 minutes. */
  configurationMaxDelayMs?: number;
  /** A refused port that lasts this long is taken for a configuration error, ms. Default 2 minutes. */
  configurationAfterMs?: number;
  random?: () => number;
  now?: () => number;
}

/** What the next wait is and why. */
export interface RetryPlan {
  delayMs: number;
  /** True when paced as a configuration error (slow, up to configurationMaxDelayMs). */
  slow: boolean;
}

/** Floor of the slow backoff's first ceiling, ms: a certificate that failed to verify is not tried again within seconds. */
const SLOW_INITIAL_MS = 30_000;

/**
 * How long to wait before the next connection attempt. Network trouble waits out the
 * ordinary backoff. A configuration error (a certificate that does not verify, a host
 * that does not exist) is never retried quickly: equal jitter over a ceiling from 30 s
 * doubling to 5 min. A refused port is both: a broker restarting refuses for seconds
 * (the ordinary backoff brings the device back soon), a wrong port refuses for ever, so
 * refusals lasting past `configurationAfterMs` are paced slowly too.
 */
export class RetryPacer {
  private readonly backoff: Backoff;
  private readonly slow: Backoff;
  private readonly configurationAfterMs: number;
  private readonly now: () => number;
  private configurationSince: number | undefined;

  constructor(opts: RetryPacerOptions) {
    this.backoff = opts.backoff;
    const max = opts.configurationMaxDelayMs ?? 5 * 60_000;
    this.slow = new Backoff({ initialDelayMs: Math.min(SLOW_INITIAL_MS, max), maxDelayMs: max, random: opts.random });
    this.configurationAfterMs = opts.configurationAfterMs ?? 2 * 60_000;
    this.now = opts.now ?? Date.now;
  }

  /** The wait after a failed attempt; each call counts one more failure. */
  next(err: DeviceError): RetryPlan {
    if (!err.configuration) {
      this.configurationSince = undefined;
      return { delayMs: this.backoff.next(), slow: false };
    }
    this.configurationSince ??= this.now();
    const lasting = !err.retryable || this.now() - this.configurationSince >= this.configurationAfterMs;
    if (!lasting) return { delayMs: this.backoff.next(), slow: false };
    const ceiling = this.slow.ceilingMs();
    // Equal jitter: [ceiling/2, ceiling), spread over the fleet yet never quick.
    return { delayMs: Math.floor(ceiling / 2 + this.slow.next() / 2), slow: true };
  }

  /** The plain backoff's next wait (a link that dropped after it was up). */
  nextAfterDrop(): number {
    return this.backoff.next();
  }

  /** Connected: configuration trouble, if any, is over. */
  connected(): void {
    this.configurationSince = undefined;
    this.slow.reset();
  }

  /** The link stayed up long enough: the plain backoff starts over too. */
  stable(): void {
    this.backoff.reset();
  }
}
