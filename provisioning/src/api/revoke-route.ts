import type { RequestHandler } from 'express';
import type { RevokeResponse } from '@tlsfleet/common';
import type { ApiContext } from './context.js';

/** POST /v1/devices/:id/revoke (admin) → `{deviceId, revoked: [serial]}`. */
export const revokeRoute: RequestHandler = async (req, res) => {
  const ctx = res.locals.ctx as ApiContext;
  const deviceId = String(req.params.id);
  const revoked = await ctx.authority.revoke(deviceId, String(res.locals.actor));
  ctx.metrics.revocations.inc(revoked.length);
  ctx.logger.info({ subject: deviceId, serials: revoked, by: res.locals.actor }, 'device revoked');
  // The revocation is recorded whatever happens to the file: /v1/crl and the publisher's
  // timer still carry it, so a write failure is logged, not answered as an error.
  await ctx.crlPublisher?.publish().catch((err: unknown) => ctx.logger.error({ err, subject: deviceId }, 'revoked, but cannot publish the CRL file'));
  const answer: RevokeResponse = { deviceId, revoked };
  res.json(answer);
};
