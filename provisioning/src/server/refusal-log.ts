import type { Logger } from '../logger.js';

/**
 * Logs refusals and timeouts at warn, at most one line per reason per interval, carrying
 * how many of that reason went unlogged since: a flood of them must not flood the log
 * (the metrics count each one).
 */
export class RefusalLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  /**
   * @param intervalMs Least time between two lines for one reason; default 10 s.
   * @param now Injected clock, ms; default Date.now.
   */
  constructor(
    private readonly logger: Pick<Logger, 'warn'>,
    private readonly intervalMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  note(reason: string, message: string, fields: Record<string, unknown> = {}): void {
    const now = this.now();
    const entry = this.last.get(reason);
    if (entry && now - entry.at < this.intervalMs) {
      entry.suppressed++;
      return;
    }
    this.logger.warn({ reason, ...fields, suppressedSinceLast: entry?.suppressed ?? 0 }, message);
    this.last.set(reason, { at: now, suppressed: 0 });
  }
}
