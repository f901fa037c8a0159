import type { Logger } from 'pino';

/** Refusal lines per reason per second at most; the rest are counted and reported on the next line. */
const LINES_PER_SECOND = 10;

/**
 * Info lines for connections accepted and refused (DESIGN "Operations": every one, with the
 * identity when known, the address and the reason). Refusals are what a flood is made of, so
 * each reason gets at most LINES_PER_SECOND lines a second; a line after a gap carries
 * `suppressed`, the refusals of that reason left unlogged since the last line. The metrics
 * still count every one.
 */
export class ConnectionLog {
  private readonly windows = new Map<string, { start: number; lines: number; suppressed: number }>();

  /** @param now Injected clock, ms; default Date.now. */
  constructor(
    private readonly logger: Pick<Logger, 'info'>,
    private readonly now: () => number = Date.now,
    private readonly linesPerSecond = LINES_PER_SECOND,
  ) {}

  /** `stage`: where it was refused (proxy, websocket, tls, profile, connect, limit). */
  refused(stage: string, reason: string, fields: Record<string, unknown>, message = 'connection refused'): void {
    const key = `${stage}:${reason}`;
    const now = this.now();
    let window = this.windows.get(key);
    if (window === undefined || now - window.start >= 1000 || now < window.start) {
      window = { start: now, lines: 0, suppressed: window?.suppressed ?? 0 };
      this.windows.set(key, window);
    }
    if (window.lines >= this.linesPerSecond) {
      window.suppressed++;
      return;
    }
    window.lines++;
    const suppressed = window.suppressed;
    window.suppressed = 0;
    this.logger.info(suppressed > 0 ? { ...fields, reason, stage, suppressed } : { ...fields, reason, stage }, message);
  }
}

const perLogger = new WeakMap<object, ConnectionLog>();

/** The one ConnectionLog of a logger, so every refusal point of a broker shares its limits. */
export function connectionLog(logger: Logger): ConnectionLog {
  let log = perLogger.get(logger);
  if (log === undefined) perLogger.set(logger, (log = new ConnectionLog(logger)));
  return log;
}
