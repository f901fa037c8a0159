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
  const answer: RevokeResponse = { deviceId, revoked };
  res.json(answer);
};
