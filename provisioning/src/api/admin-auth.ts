import { createHash, timingSafeEqual } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { RequestHandler } from 'express';
import { TlsfleetError } from '@tlsfleet/common';
import { peerCertificate } from '../enrollment/peer-certificate.js';
import type { ApiContext } from './context.js';
import { logAdminRequest } from './admin-log.js';

/**
 * Admin routes: `Authorization: Bearer <admin token>` compared in constant time, or an
 * admin client certificate (`spiffe://<td>/admin/<name>`, issued only by `init`). No
 * credential is `unauthorized`; a wrong one `forbidden`.
 */
export function requireAdmin(ctx: ApiContext): RequestHandler {
  return (req, res, next) => {
    logAdminRequest(ctx, req, res);
    const header = req.headers.authorization;
    if (header !== undefined) {
      const m = /^Bearer +(\S+)\s*$/i.exec(header);
      if (!m) throw new TlsfleetError('unauthorized', 'Expected Authorization: Bearer <admin token>.');
      const presented = createHash('sha256').update(m[1] as string).digest();
      if (!timingSafeEqual(presented, ctx.adminTokenHash)) throw new TlsfleetError('forbidden', 'Wrong admin token.');
      res.locals.actor = 'admin-token';
      return next();
    }
    const socket = req.socket as TLSSocket;
    if (!socket.getPeerCertificate?.()?.raw) throw new TlsfleetError('unauthorized', 'Admin routes need the admin token or an admin client certificate.');
    const peer = peerCertificate(socket, ctx.trustDomain);
    if (peer.identity.kind !== 'admin') throw new TlsfleetError('forbidden', 'This certificate is not an admin identity.');
    res.locals.actor = `admin:${peer.identity.name}`;
    res.locals.actorSerial = peer.serial;
    next();
  };
}
