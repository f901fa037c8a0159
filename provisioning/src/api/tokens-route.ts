import type { RequestHandler } from 'express';
import { TlsfleetError, type CreateTokenRequest, type CreateTokenResponse } from '@tlsfleet/common';
import type { ApiContext } from './context.js';

/** POST /v1/tokens (admin) `{deviceId, ttlSeconds?, certTtlSeconds?, kind?}` → 201 `{token, deviceId, expiresAt}`. */
export const tokensRoute: RequestHandler = async (req, res) => {
  const ctx = res.locals.ctx as ApiContext;
  const body = req.body as Partial<CreateTokenRequest> | undefined;
  if (typeof body?.deviceId !== 'string') throw new TlsfleetError('invalid_request', 'The body needs a "deviceId" string.');
  const { token, expiresAt } = await ctx.authority.mintToken({
    subject: body.deviceId,
    kind: body.kind,
    ttlSeconds: body.ttlSeconds,
    certTtlSeconds: body.certTtlSeconds,
    createdBy: String(res.locals.actor),
  });
  ctx.logger.info({ subject: body.deviceId, kind: body.kind ?? 'device', expiresAt, by: res.locals.actor }, 'token minted');
  const answer: CreateTokenResponse = { token, deviceId: body.deviceId, expiresAt: expiresAt.toISOString() };
  res.status(201).json(answer);
};
