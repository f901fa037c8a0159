import type { RequestHandler } from 'express';
import type { ApiContext } from './context.js';

/** GET /v1/crl → DER CRL. */
export const crlRoute: RequestHandler = async (req, res) => {
  const ctx = res.locals.ctx as ApiContext;
  const crl = await ctx.authority.crl();
  res.setHeader('Content-Type', 'application/pkix-crl');
  res.setHeader('Last-Modified', crl.thisUpdate.toUTCString());
  // Exact, unlike Last-Modified's whole seconds: two CRLs in one second differ here.
  res.setHeader('ETag', `"crl-${crl.number}"`);
  if (req.headers['if-none-match'] === `"crl-${crl.number}"`) {
    res.status(304).end();
    return;
  }
  res.setHeader('Cache-Control', 'no-cache');
  res.send(crl.der);
};

/** GET /v1/ca → PEM trust bundle. */
export const caRoute: RequestHandler = (_req, res) => {
  res.type('application/x-pem-file').send((res.locals.ctx as ApiContext).caBundlePem);
};

export const healthzRoute: RequestHandler = (_req, res) => {
  res.json({ status: 'ok' });
};

/** Ready while the store answers and no drain has begun. */
export const readyzRoute: RequestHandler = async (_req, res) => {
  const ctx = res.locals.ctx as ApiContext;
  if (ctx.draining()) {
    res.status(503).json({ status: 'draining' });
    return;
  }
  try {
    await ctx.store.ping();
    res.json({ status: 'ready' });
  } catch (err) {
    ctx.logger.warn({ err }, 'store not reachable');
    res.status(503).json({ status: 'store unavailable' });
  }
};

export const metricsRoute: RequestHandler = async (_req, res) => {
  const registry = (res.locals.ctx as ApiContext).metrics.registry;
  res.type(registry.contentType).send(await registry.metrics());
};
