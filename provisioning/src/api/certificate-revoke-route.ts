import type { RequestHandler } from 'express';
import { TlsfleetError, type CertificateRevokeResponse } from '@tlsfleet/common';
import type { ApiContext } from './context.js';

/**
 * POST /v1/certificates/:serial/revoke (admin) with `{"reason"?}` (RFC 5280 §5.3.1 name;
 * default unspecified) → 200 CertificateRevokeResponse. Idempotent: revoking it again answers
 * 200 with `alreadyRevoked` and the first revocation's time and reason. Unknown serial: 404.
 */
export const certificateRevokeRoute: RequestHandler = async (req, res) => {
  const ctx = res.locals.ctx as ApiContext;
  const body: unknown = req.body ?? {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new TlsfleetError('invalid_request', 'The body must be a JSON object such as {"reason":"keyCompromise"}.');
  const actor = String(res.locals.actor);
  const revoked = await ctx.authority.revokeCertificate(String(req.params.serial), (body as { reason?: unknown }).reason, actor);
  if (!revoked.alreadyRevoked) {
    ctx.metrics.revocations.inc();
    ctx.metrics.certificateRevocations.inc({ reason: revoked.reason });
    ctx.logger.info({ subject: revoked.deviceId, serial: revoked.serial, reason: revoked.reason, by: actor }, 'certificate revoked');
    // As for a device revocation: the record stands even if the file cannot be written.
    await ctx.crlPublisher?.publish().catch((err: unknown) => ctx.logger.error({ err, serial: revoked.serial }, 'revoked, but cannot publish the CRL file'));
  }
  const answer: CertificateRevokeResponse = { ...revoked, revokedAt: revoked.revokedAt.toISOString() };
  res.json(answer);
};
