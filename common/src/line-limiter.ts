/**
 * At most `perSecond` log lines a second for each key (a refusal's reason); the rest are
 * counted, and the next line admitted for that key reports how many were left out. A flood
 * of refusals must not fill the disk; the metrics still count every one.
 */
export class LineLimiter {
  private readonly windows = new Map<string, { start: number; lines: number; suppressed: number }>();

  /**
   * @param perSecond Lines per key per second; default 10.
   * @param now Injected clock, ms; default Date.now.
   */
  constructor(
    private readonly perSecond = 10,
    private readonly now: () => number = Date.now,
  ) {}

  /** undefined: drop this line. Otherwise write it, with the number of lines of `key` dropped since the last one written. */
  admit(key: string): number | undefined {
    const now = this.now();
    let window = this.windows.get(key);
    if (window === undefined || now - window.start >= 1000 || now < window.start) {
      window = { start: now, lines: 0, suppressed: window?.suppressed ?? 0 };
      this.windows.set(key, window);
    }
    if (window.lines >= this.perSecond) {
      window.suppressed++;
      return undefined;
    }
    window.lines++;
    const suppressed = window.suppressed;
    window.suppressed = 0;
    return suppressed;
  }
}

const perOwner = new WeakMap<object, LineLimiter>();

/** The one LineLimiter (10 lines/s per key) of `owner`, e.g. a service's logger, shared by every place that logs refusals through it. */
export function lineLimiterOf(owner: object): LineLimiter {
  let limiter = perOwner.get(owner);
  if (limiter === undefined) perOwner.set(owner, (limiter = new LineLimiter()));
  return limiter;
}
