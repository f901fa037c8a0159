import { TlsfleetError } from '@tlsfleet/common';

export interface IssuanceGateOptions {
  /** Enrollments and renewals served at once before answering 503; default 64. */
  maxInFlight?: number;
  /** Sustained issuance requests per second per client address before 429; default 20. 0 turns it off. */
  perClientRate?: number;
  /** Burst above the sustained rate per client; default 40. */
  perClientBurst?: number;
  /** Injected clock, ms; default Date.now. */
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Buckets kept at most; idle (full) ones are dropped first when it fills. */
const MAX_TRACKED_CLIENTS = 100_000;

/**
 * Admission for issuance: a bounded number in flight, so a renewal storm is answered
 * `overloaded` with Retry-After instead of queueing without bound, and a token bucket per
 * client address (`rate_limited`) so one client cannot starve the fleet.
 */
export class IssuanceGate {
  private inFlight = 0;
  private readonly maxInFlight: number;
  private readonly rate: number;
  private readonly burst: number;
  private readonly now: () => number;
  private readonly buckets = new Map<string, Bucket>();

  constructor(opts: IssuanceGateOptions = {}) {
    this.maxInFlight = opts.maxInFlight ?? 64;
    this.rate = opts.perClientRate ?? 20;
    this.burst = Math.max(1, opts.perClientBurst ?? 40);
    this.now = opts.now ?? Date.now;
  }

  get current(): number {
    return this.inFlight;
  }

  /** Admits a request or throws; the returned function must be called once when it ends. */
  admit(client: string): () => void {
    if (this.inFlight >= this.maxInFlight) {
      // Spread the retries of a storm over a few seconds rather than one instant.
      throw new TlsfleetError('overloaded', undefined, { retryAfterSeconds: 1 + Math.floor(Math.random() * 5) });
    }
    this.take(client);
    this.inFlight++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.inFlight--;
    };
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
