import type { TLSSocket } from 'node:tls';
import type { RequestHandler } from 'express';
import { TlsfleetError, type PeerCertificate } from '@tlsfleet/common';
import type { Issued } from '../authority/authority.js';
import { peerCertificate } from '../enrollment/peer-certificate.js';
import type { ApiContext } from './context.js';
import { clientKeyOf } from './client-key.js';
import { once } from './issuance-gate.js';
import { runIssuance, type Operation } from './issuance.js';
import { bodyWithin } from './read-body.js';

export type Runner = (work: () => Promise<Issued>) => Promise<Issued>;

/** What the admission steps leave in `res.locals` for the route. */
export interface AdmittedLocals {
  /** The verified client certificate of a renewal. */
  peer?: PeerCertificate;
  /** Runs the route's work as the admitted issuance, timing and counting it. */
  run: Runner;
}

/**
 * The steps an enrollment or renewal passes before its handler, cheapest first (issue 19):
 * identify (a renewal's client certificate, checked before anything is read) → enter (the
 * client's open requests) → the body, under its deadline → admit (per-client rate, in-flight
 * bound with places reserved for renewals). Nothing is admitted before its body arrived.
 * A renewal after expiry has no client certificate: until its proof verifies (after
 * admission) it is anonymous work, keyed by address and kept out of the renewal reserve.
 */
export function admitIssuance(ctx: ApiContext, operation: Operation, body: RequestHandler): RequestHandler[] {
  const identify: RequestHandler = (req, res, next) => {
    res.locals.started = process.hrtime.bigint();
    if (operation === 'renew') {
      const peer = peerCertificate(req.socket as TLSSocket, ctx.trustDomain);
      res.locals.peer = peer;
      res.locals.client = `${peer.identity.kind}:${peer.identity.name}`;
    } else {
      res.locals.client = clientKeyOf(req.socket.remoteAddress);
    }
    next();
  };
  const enter: RequestHandler = (_req, res, next) => {
    const release = shedding(ctx, 'client_in_flight', () => ctx.gate.enter(res.locals.client as string));
    res.once('close', release);
    ctx.metrics.issuanceBodiesReading.inc();
    res.locals.bodyRead = once(() => ctx.metrics.issuanceBodiesReading.dec());
    res.once('close', res.locals.bodyRead as () => void);
    next();
  };
  const read = bodyWithin(body, ctx.bodyTimeoutMs, () => {
    ctx.metrics.connectionTimeouts.inc({ phase: 'body' });
    ctx.refusals.note('body_timeout', 'request body too slow: answered 408 and closed');
  });
  const admit: RequestHandler = (req, res, next) => {
    (res.locals.bodyRead as () => void)();
    const release = shedding(ctx, undefined, () => ctx.gate.admit(res.locals.client as string, operation === 'renew' ? 'renew' : 'enroll'));
    res.locals.run = runIssuance(ctx, operation, req, res, release);
    next();
  };
  return [closingOnRefusal(identify), closingOnRefusal(enter), read, admit];
}

/**
 * A refusal before the body was read also closes the connection: draining an unread body
 * (whatever Content-Length it claims) would keep the connection up to the request timeout.
 */
function closingOnRefusal(step: RequestHandler): RequestHandler {
  return (req, res, next) => {
    try {
      step(req, res, next);
    } catch (err) {
      res.setHeader('Connection', 'close');
      throw err;
    }
  };
}

/** Runs one admission step, counting a refusal in `tlsfleet_provisioning_issuance_shed_total` by `reason` (default: its code). */
function shedding(ctx: ApiContext, reason: string | undefined, step: () => () => void): () => void {
  try {
    return step();
  } catch (err) {
    if (err instanceof TlsfleetError) ctx.metrics.shed.inc({ reason: reason ?? err.code });
    throw err;
  }
}
