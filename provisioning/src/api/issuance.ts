import type { Request, Response } from 'express';
import { lineLimiterOf, TlsfleetError } from '@tlsfleet/common';
import type { Issued } from '../authority/authority.js';
import type { ApiContext } from './context.js';

/**
 * `renew-expired` (POST /v1/renew-expired) and `renew-relayed` (POST /v1/relay/renew, or a
 * broker's in-process call): counted as renewals, timed under their own label.
 */
export type Operation = 'enroll' | 'renew' | 'renew-expired' | 'renew-relayed';

const TOKEN_CODES = new Set(['invalid_token', 'token_used', 'token_expired']);

/**
 * The runner of one admitted enrollment or renewal: counts it in flight until the answer
 * ends, times it from the start of the request, and counts its result. `release` gives
 * its place in the issuance gate back.
 */
export function runIssuance(ctx: ApiContext, operation: Operation, req: Request, res: Response, release: () => void): (work: () => Promise<Issued>) => Promise<Issued> {
  const started = (res.locals.started as bigint | undefined) ?? process.hrtime.bigint();
  let held = true;
  ctx.metrics.issuanceInFlight.inc();
  const end = () => {
    if (!held) return;
    held = false;
    release();
    ctx.metrics.issuanceInFlight.dec();
  };
  res.once('close', end);
  return async (work) => {
    const counter = operation === 'enroll' ? ctx.metrics.enrollments : ctx.metrics.renewals;
    try {
      const issued = await work();
      counter.inc({ result: issued.replayed ? 'replayed' : 'issued' });
      ctx.metrics.issuanceSeconds.observe({ operation: operation.replace('-', '_') }, Number(process.hrtime.bigint() - started) / 1e9);
      ctx.logger.info({ operation, subject: issued.identity.name, serial: issued.serial, notAfter: issued.notAfter, replayed: issued.replayed, address: req.socket.remoteAddress }, 'certificate issued');
      return issued;
    } catch (err) {
      const code = err instanceof TlsfleetError ? err.code : 'internal_error';
      counter.inc({ result: code });
      if (TOKEN_CODES.has(code)) ctx.metrics.tokenFailures.inc({ code });
      // A flood of bad tokens must not fill the disk: 10 lines a second per code.
      const suppressed = lineLimiterOf(ctx.logger).admit(`issuance:${code}`);
      if (suppressed !== undefined) ctx.logger.info({ operation, code, client: req.socket.remoteAddress, ...(suppressed > 0 ? { suppressed } : {}) }, 'issuance refused');
      throw err;
    } finally {
      end();
    }
  };
}
