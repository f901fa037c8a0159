import type { Logger } from 'pino';
import { LineLimiter, lineLimiterOf } from '@tlsfleet/common';

/**
 * Info lines for refused connections (docs/operations.md, logs: every one, with the identity
 * when known, the address and the reason). Refusals are what a flood is made of, so each
 * stage and reason gets at most 10 lines a second; a line after a gap carries `suppressed`,
 * the refusals of that reason left unlogged since the last line. The metrics still count
 * every one.
 */
export class ConnectionLog {
  /** @param limiter Default: 10 lines a second per stage and reason. */
  constructor(
    private readonly logger: Pick<Logger, 'info'>,
    private readonly limiter: LineLimiter = new LineLimiter(),
  ) {}

  /** `stage`: where it was refused (proxy, websocket, tls, connect, limit). */
  refused(stage: string, reason: string, fields: Record<string, unknown>, message = 'connection refused'): void {
    const suppressed = this.limiter.admit(`${stage}:${reason}`);
    if (suppressed === undefined) return;
    this.logger.info(suppressed > 0 ? { ...fields, reason, stage, suppressed } : { ...fields, reason, stage }, message);
  }
}

/** The ConnectionLog of a logger: every refusal point of a broker shares the logger's limiter. */
export function connectionLog(logger: Logger): ConnectionLog {
  return new ConnectionLog(logger, lineLimiterOf(logger));
}
