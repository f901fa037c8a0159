import type { RequestHandler } from 'express';
import type { PeerCertificate } from '@tlsfleet/common';
import type { ApiContext } from './context.js';
import type { Runner } from './admit-issuance.js';
import { csrFromPem, enrollResponse } from './enroll-route.js';

/** POST /v1/renew `{csr}` over mTLS → EnrollResponse for the same identity. */
export const renewRoute: RequestHandler = async (req, res) => {
  const ctx = res.locals.ctx as ApiContext;
  // Verified by admitIssuance before the body was read.
  const peer = res.locals.peer as PeerCertificate;
  const csr = csrFromPem((req.body as { csr?: unknown } | undefined)?.csr);
  const issued = await (res.locals.run as Runner)(() => ctx.authority.renew(peer, csr));
  res.status(201).json(enrollResponse(issued));
};
