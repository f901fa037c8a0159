import type { RequestHandler } from 'express';
import { pemToDer, TlsfleetError, type EnrollResponse } from '@tlsfleet/common';
import type { Issued } from '../authority/authority.js';
import type { Runner } from './admit-issuance.js';

/** POST /v1/enroll `{token, csr}` → EnrollResponse. */
export const enrollRoute: RequestHandler = async (req, res) => {
  const body = req.body as { token?: unknown; csr?: unknown } | undefined;
  if (typeof body?.token !== 'string') throw new TlsfleetError('invalid_token', 'The body needs a "token" string.');
  const csr = csrFromPem(body.csr);
  const issued = await (res.locals.run as Runner)(() => res.locals.ctx.authority.enroll(body.token as string, csr, { address: req.socket.remoteAddress }));
  res.status(issued.replayed ? 200 : 201).json(enrollResponse(issued));
};

export function csrFromPem(pem: unknown): Buffer {
  if (typeof pem !== 'string') throw new TlsfleetError('invalid_csr', 'The body needs a "csr" string holding a PEM certificate request.');
  const der = pemToDer(pem, 'CERTIFICATE REQUEST') ?? pemToDer(pem, 'NEW CERTIFICATE REQUEST');
  if (!der) throw new TlsfleetError('invalid_csr', 'The "csr" is not exactly one PEM CERTIFICATE REQUEST block.');
  return der;
}

export function enrollResponse(issued: Issued): EnrollResponse & { serial: string; notBefore: string } {
  return {
    deviceId: issued.identity.name,
    certificate: issued.certificatePem,
    chain: issued.chainPem,
    caBundle: issued.caBundlePem,
    notAfter: issued.notAfter.toISOString(),
    renewAfter: issued.renewAfter.toISOString(),
    serial: issued.serial,
    notBefore: issued.notBefore.toISOString(),
  };
}
