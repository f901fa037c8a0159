import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { PruneCount, Store } from './storage/store.js';

/** Default `--retention`: 90 days, the window most audits and incident reviews look back over. */
export const DEFAULT_RETENTION_MS = 90 * 86_400_000;

export interface RetentionPrunerOptions {
  store: Store;
  /** Age past expiry (certificates) or past being spent, cancelled or expired (tokens) after which rows go, ms; > 0. */
  retentionMs: number;
  /** Injected clock, ms; default Date.now. */
  now?: () => number;
  /** Between sweeps, ms; default 1 h. */
  intervalMs?: number;
  /** Rows of each kind deleted per transaction; default 500, so no batch holds the store (or SQLite's event loop) for long. */
  batch?: number;
  /** Told of each batch that deleted something (metrics). */
  onPruned?: (count: PruneCount) => void;
  /** Told of a sweep that failed; the next one tries again. */
  onError?: (err: unknown) => void;
}

/**
 * Deletes what no one needs any more, at start and then every `intervalMs`: certificates
 * expired more than `retentionMs` ago (revoked ones too: a CRL stops listing a certificate
 * once it has expired, RFC 5280 §3.3) except each device's current one, and tokens spent,
 * cancelled or expired that long ago. The audit trail is kept. A sweep deletes in small
 * batches and yields to the event loop between them.
 */
export class RetentionPruner {
  private readonly opts: Required<Omit<RetentionPrunerOptions, 'onPruned' | 'onError'>> & Pick<RetentionPrunerOptions, 'onPruned' | 'onError'>;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<PruneCount> | undefined;

  constructor(opts: RetentionPrunerOptions) {
    if (!(opts.retentionMs > 0)) throw new RangeError('retentionMs must be positive');
    this.opts = { now: Date.now, intervalMs: 3_600_000, batch: 500, ...opts };
  }

  start(): void {
    if (this.timer) return;
    void this.sweep().catch(() => undefined);
    this.timer = setInterval(() => void this.sweep().catch(() => undefined), this.opts.intervalMs);
    this.timer.unref();
  }

  /** One sweep (joining the one under way, if any); resolves with what it deleted. */
  sweep(): Promise<PruneCount> {
    this.running ??= this.sweepNow().finally(() => (this.running = undefined));
    return this.running;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  private async sweepNow(): Promise<PruneCount> {
    const { store, batch, onPruned } = this.opts;
    const cutoff = this.opts.now() - this.opts.retentionMs;
    const total = { certificates: 0, tokens: 0 };
    try {
      for (;;) {
        const count = await store.prune(cutoff, batch);
        total.certificates += count.certificates;
        total.tokens += count.tokens;
        if (count.certificates + count.tokens > 0) onPruned?.(count);
        if (count.certificates < batch && count.tokens < batch) return total;
        await yieldToEventLoop();
      }
    } catch (err) {
      this.opts.onError?.(err);
      throw err;
    }
  }
}
