import type { RequestHandler } from 'express';
import type { Issued } from '../authority/authority.js';
import type { ApiContext } from './context.js';
import { gated, type Operation } from './issuance.js';

export type Runner = (work: () => Promise<Issued>) => Promise<Issued>;

/** Admits an issuance request before its body is read; the handler runs its work through `res.locals.run`. */
export function admitIssuance(ctx: ApiContext, operation: Operation): RequestHandler {
  return (req, res, next) => {
    res.locals.run = gated(ctx, operation, req, res);
    next();
  };
}
