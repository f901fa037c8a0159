import type { RequestHandler, Response } from 'express';
import { pemCertificates, TlsfleetError, type PeerCertificate } from '@tlsfleet/common';
import type { Issued } from '../authority/authority.js';
import type { ApiContext } from '../api/context.js';
import type { Runner } from '../api/admit-issuance.js';
import { base64Body, certsOnlyPkcs7 } from './pkcs7.js';
import { decodeEstCsrBody } from './request-body.js';
import { tokenFromAuthorization } from './token-auth.js';

const PKCS7_CERTS_ONLY = 'application/pkcs7-mime; smime-type=certs-only';

/** GET /.well-known/est/cacerts → the CA certificates, base64 PKCS#7 certs-only (RFC 7030 §4.1.3). */
export const estCacertsRoute: RequestHandler = (_req, res) => {
  const ctx = res.locals.ctx as ApiContext;
  sendPkcs7(res, pemCertificates(ctx.caCertificatesPem), 200);
};

/** POST /.well-known/est/simpleenroll: bearer token (raw or base64) or Basic with the token as password (RFC 7030 §4.2.1, §3.2.3). */
export const estSimpleEnrollRoute: RequestHandler = async (req, res) => {
  const ctx = res.locals.ctx as ApiContext;
  // RFC 7030 §3.2.3: a 401 names the schemes the server accepts.
  res.setHeader('WWW-Authenticate', 'Bearer realm="tlsfleet", Basic realm="tlsfleet"');
  const token = tokenFromAuthorization(req.headers.authorization);
  if (token === undefined) {
    throw new TlsfleetError('unauthorized', 'simpleenroll needs the enrollment token as a bearer token or as the Basic password.');
  }
  const csr = decodeEstCsrBody(rawBody(req.body), ctx.maxBodyBytes);
  const issued = await (res.locals.run as Runner)(() => ctx.authority.enroll(token, csr, { address: req.socket.remoteAddress }));
  sendIssued(res, issued, 200);
};

/** POST /.well-known/est/simplereenroll: authenticated by the current client certificate (RFC 7030 §4.2.2). */
export const estSimpleReenrollRoute: RequestHandler = async (req, res) => {
  const ctx = res.locals.ctx as ApiContext;
  // Verified by admitIssuance before the body was read.
  const peer = res.locals.peer as PeerCertificate;
  const csr = decodeEstCsrBody(rawBody(req.body), ctx.maxBodyBytes);
  const issued = await (res.locals.run as Runner)(() => ctx.authority.renew(peer, csr));
  sendIssued(res, issued, 200);
};

function rawBody(body: unknown): Buffer {
  return Buffer.isBuffer(body) ? body : Buffer.alloc(0);
}

/** The leaf then the issuing intermediate (docs/reference/http-api.md). */
function sendIssued(res: Response, issued: Issued, status: number): void {
  sendPkcs7(res, pemCertificates(issued.chainPem), status);
}

function sendPkcs7(res: Response, certs: Buffer[], status: number): void {
  res.status(status);
  res.setHeader('Content-Type', PKCS7_CERTS_ONLY);
  // No Content-Transfer-Encoding header: RFC 8951 §3 says servers should leave it out.
  res.send(base64Body(certsOnlyPkcs7(certs)));
}
