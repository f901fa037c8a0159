import type { Request, RequestHandler, Response } from 'express';
import { TlsfleetError } from '@tlsfleet/common';
import type { Crl } from '../authority/authority.js';
import type { ApiContext } from './context.js';

/** GET /v1/crl → DER CRL. */
export const crlRoute: RequestHandler = async (req, res) => {
  sendCrl(req, res, await (res.locals.ctx as ApiContext).authority.crl());
};

/** GET /v1/crl/previous → the previous intermediate's DER CRL during a rotation overlap; 404 otherwise. */
export const previousCrlRoute: RequestHandler = async (req, res) => {
  const crl = await (res.locals.ctx as ApiContext).authority.previousCrl();
  if (!crl) throw new TlsfleetError('not_found', 'No previous intermediate: no rotation is overlapping.');
  sendCrl(req, res, crl);
};

function sendCrl(req: Request, res: Response, crl: Crl): void {
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
}

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
