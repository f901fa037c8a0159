import type { RequestHandler } from 'express';
import type { ApiContext } from './context.js';
import type { Runner } from './admit-issuance.js';
import { csrFromPem, enrollResponse } from './enroll-route.js';
import { readExpiredRenewal } from '../enrollment/expired-renewal.js';

/**
 * POST /v1/renew-expired `{certificate, csr, proof}` → the /v1/renew answer for the identity
 * of a certificate that expired within `--renew-expired-within`. Registered only when that
 * flag is set; no client certificate: the proof stands in for the TLS handshake's.
 */
export const renewExpiredRoute: RequestHandler = async (req, res) => {
  const ctx = res.locals.ctx as ApiContext;
  const issued = await (res.locals.run as Runner)(async () => ctx.authority.renewExpired(readExpiredRenewal(req.body, ctx.trustDomain, csrFromPem)));
  res.status(201).json(enrollResponse(issued));
};
