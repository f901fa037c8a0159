import express, { type Express } from 'express';
import { TlsfleetError } from '@tlsfleet/common';
import type { ApiContext } from './context.js';
import { errorHandler, sendError } from './errors.js';
import { routes } from './routes.js';

/** The provisioning HTTP application: routes, a typed 404, and the one error handler. */
export function createApp(ctx: ApiContext): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.once('finish', () => {
      ctx.logger.debug({ method: req.method, path: req.path, status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6, client: req.socket.remoteAddress }, 'request');
    });
    next();
  });
  app.use(routes(ctx));
  app.use((_req, res) => sendError(res, new TlsfleetError('not_found', 'No such route.')));
  app.use(errorHandler(ctx));
  return app;
}
