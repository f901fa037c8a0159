import type { TLSSocket } from 'node:tls';
import type { RequestHandler } from 'express';
import { peerCertificate } from '../enrollment/peer-certificate.js';
import type { ApiContext } from './context.js';
import type { Runner } from './admit-issuance.js';
import { csrFromPem, enrollResponse } from './enroll-route.js';

/** POST /v1/renew `{csr}` over mTLS → EnrollResponse for the same identity. */
export const renewRoute: RequestHandler = async (req, res) => {
  const ctx = res.locals.ctx as ApiContext;
  const peer = peerCertificate(req.socket as TLSSocket, ctx.trustDomain);
  const csr = csrFromPem((req.body as { csr?: unknown } | undefined)?.csr);
  const issued = await (res.locals.run as Runner)(() => ctx.authority.renew(peer, csr));
  res.status(201).json(enrollResponse(issued));
};
