import { TlsfleetError } from '@tlsfleet/common';
import { RetrySpread } from './retry-spread.js';

export interface IssuanceGateOptions {
  /** Enrollments and renewals served at once before answering 503; default 64. */
  maxInFlight?: number;
  /**
   * Of `maxInFlight`, places only renewals by an authenticated certificate may take, so a
   * flood of anonymous enrollments never holds the capacity devices need to renew; default
   * a quarter of `maxInFlight` (16). Must leave at least one place to enrollments.
   */
  renewalReserve?: number;
  /** Issuance requests one client (address, or device for a renewal) may have open at once, body upload included, before 429; default 8. 0 turns it off. */
  maxInFlightPerClient?: number;
  /** Sustained issuance requests per second per client address before 429; default 20. 0 turns it off. */
  perClientRate?: number;
  /** Burst above the sustained rate per client; default 40. */
  perClientBurst?: number;
  /** Injected clock, ms; default Date.now. */
  now?: () => number;
  /** Injected randomness for the spread of Retry-After; default Math.random. */
  random?: () => number;
}

/** Who asks: anonymous work (enrollment) or a renewal by an authenticated certificate. */
export type IssuanceKind = 'enroll' | 'renew';

interface Bucket {
  tokens: number;
  at: number;
}

/** Buckets kept at most; idle (full) ones are dropped first when it fills. */
const MAX_TRACKED_CLIENTS = 100_000;

/**
 * Admission for issuance, in two steps. `enter` runs before the body is read: at most
 * `maxInFlightPerClient` open requests per client, so one address cannot hold many slow
 * uploads. `admit` runs once the whole body has arrived: a token bucket per client
 * (`rate_limited`) and a bounded number in flight (`overloaded` with a Retry-After that
 * grows with the backlog, retry-spread.ts), with a share of it reserved for renewals.
 */
export class IssuanceGate {
  private inFlight = 0;
  private readonly maxInFlight: number;
  private readonly renewalReserve: number;
  private readonly perClient: number;
  private readonly rate: number;
  private readonly burst: number;
  private readonly now: () => number;
  private readonly buckets = new Map<string, Bucket>();
  private readonly open = new Map<string, number>();
  private readonly spread: RetrySpread;

  constructor(opts: IssuanceGateOptions = {}) {
    this.maxInFlight = opts.maxInFlight ?? 64;
    this.renewalReserve = opts.renewalReserve ?? Math.floor(this.maxInFlight / 4);
    if (this.renewalReserve < 0 || this.renewalReserve >= this.maxInFlight) {
      throw new RangeError(`renewalReserve must be from 0 to maxInFlight - 1 (${this.maxInFlight - 1}), not ${this.renewalReserve}`);
    }
    this.perClient = opts.maxInFlightPerClient ?? 8;
    this.rate = opts.perClientRate ?? 20;
    this.burst = Math.max(1, opts.perClientBurst ?? 40);
    this.now = opts.now ?? Date.now;
    this.spread = new RetrySpread({ now: this.now, random: opts.random });
  }

  /** The Retry-After of the last `overloaded` refusal, seconds (0 before any). */
  get lastRetryAfterSeconds(): number {
    return this.spread.lastSeconds;
  }

  /** Issuances admitted and not yet released. */
  get current(): number {
    return this.inFlight;
  }

  /** Requests of `client` open (reading a body or admitted). */
  openOf(client: string): number {
    return this.open.get(client) ?? 0;
  }

  /**
   * Before the body is read: takes one of the client's open-request places or throws
   * `rate_limited`. The returned function must be called once when the request ends.
   */
  enter(client: string): () => void {
    const n = this.open.get(client) ?? 0;
    if (this.perClient > 0 && n >= this.perClient) {
      throw new TlsfleetError('rate_limited', 'Too many requests from this client at once; retry later.', { retryAfterSeconds: 1 });
    }
    this.open.set(client, n + 1);
    return once(() => {
      const left = (this.open.get(client) ?? 1) - 1;
      if (left > 0) this.open.set(client, left);
      else this.open.delete(client);
    });
  }

  /** After the body arrived: admits the issuance or throws; the returned function must be called once when it ends. */
  admit(client: string, kind: IssuanceKind = 'enroll'): () => void {
    const bound = kind === 'renew' ? this.maxInFlight : this.maxInFlight - this.renewalReserve;
    if (this.inFlight >= bound) {
      throw new TlsfleetError('overloaded', undefined, { retryAfterSeconds: this.spread.refuse(kind, this.inFlight, bound) });
    }
    this.take(client);
    this.inFlight++;
    const admitted = this.now();
    return once(() => {
      this.inFlight--;
      this.spread.ended(this.now() - admitted);
    });
  }

  private take(client: string): void {
    if (this.rate <= 0) return;
    const now = this.now();
    let b = this.buckets.get(client);
    if (!b) {
      if (this.buckets.size >= MAX_TRACKED_CLIENTS) this.sweep(now);
      b = { tokens: this.burst, at: now };
      this.buckets.set(client, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.rate);
    b.at = now;
    if (b.tokens < 1) {
      throw new TlsfleetError('rate_limited', undefined, { retryAfterSeconds: Math.max(1, Math.ceil((1 - b.tokens) / this.rate)) });
    }
    b.tokens -= 1;
  }

  private sweep(now: number): void {
    const fullAfterMs = (this.burst / this.rate) * 1000;
    for (const [k, b] of this.buckets) if (now - b.at >= fullAfterMs) this.buckets.delete(k);
    // Still full of active clients: forget the oldest rather than grow without bound.
    if (this.buckets.size >= MAX_TRACKED_CLIENTS) {
      const first = this.buckets.keys().next().value;
      if (first !== undefined) this.buckets.delete(first);
    }
  }
}

/** `release` made safe to call more than once: only the first call runs it. */
export function once(release: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    release();
  };
}
