import type { Request, Response } from 'express';
import { TlsfleetError } from '@tlsfleet/common';
import type { Issued } from '../authority/authority.js';
import type { ApiContext } from './context.js';

export type Operation = 'enroll' | 'renew';

const TOKEN_CODES = new Set(['invalid_token', 'token_used', 'token_expired']);

/**
 * Runs one enrollment or renewal under the issuance gate, timing it and counting its
 * result. Admission is taken before the body is read, so slow uploads count as in flight.
 */
export function gated(ctx: ApiContext, operation: Operation, req: Request, res: Response): (work: () => Promise<Issued>) => Promise<Issued> {
  const started = process.hrtime.bigint();
  let release: (() => void) | undefined;
  try {
    release = ctx.gate.admit(req.socket.remoteAddress ?? 'unknown');
  } catch (err) {
    if (err instanceof TlsfleetError) ctx.metrics.shed.inc({ reason: err.code });
    throw err;
  }
  ctx.metrics.issuanceInFlight.inc();
  const end = () => {
    if (!release) return;
    release();
    release = undefined;
    ctx.metrics.issuanceInFlight.dec();
  };
  res.once('close', end);
  return async (work) => {
    const counter = operation === 'enroll' ? ctx.metrics.enrollments : ctx.metrics.renewals;
    try {
      const issued = await work();
      counter.inc({ result: issued.replayed ? 'replayed' : 'issued' });
      ctx.metrics.issuanceSeconds.observe({ operation }, Number(process.hrtime.bigint() - started) / 1e9);
      ctx.logger.info({ operation, subject: issued.identity.name, serial: issued.serial, notAfter: issued.notAfter, replayed: issued.replayed }, 'certificate issued');
      return issued;
    } catch (err) {
      const code = err instanceof TlsfleetError ? err.code : 'internal_error';
      counter.inc({ result: code });
      if (TOKEN_CODES.has(code)) ctx.metrics.tokenFailures.inc({ code });
      ctx.logger.info({ operation, code, client: req.socket.remoteAddress }, 'issuance refused');
      throw err;
    } finally {
      end();
    }
  };
}
