import type { Request, Response } from 'express';
import type { ApiContext } from './context.js';

/**
 * Logs an admin request once answered: at info with who (`by`: `admin-token`, or
 * `admin:<name>` and the admin certificate's `serial`) and what (method, path, status).
 * Refused ones (no or a wrong credential) go through the rate-limited refusal log, so
 * guessing at the admin token cannot fill the disk. Never the Authorization header.
 */
export function logAdminRequest(ctx: ApiContext, req: Request, res: Response): void {
  // Read now: by 'finish' a closed connection no longer knows its peer.
  const address = req.socket.remoteAddress;
  res.once('finish', () => {
    const fields = { method: req.method, path: req.path, status: res.statusCode, address };
    const by = res.locals.actor as string | undefined;
    if (by === undefined) ctx.refusals.note(`admin_${res.statusCode}`, 'admin request refused', fields);
    else ctx.logger.info({ by, serial: res.locals.actorSerial as string | undefined, ...fields }, 'admin request');
  });
}
