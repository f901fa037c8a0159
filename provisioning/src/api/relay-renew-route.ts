import type { TLSSocket } from 'node:tls';
import type { RequestHandler } from 'express';
import { peerCertificate } from '../enrollment/peer-certificate.js';
import { readRelayedRenewal, relayedPeer, requireRelay, type RelayedRenewalRequest } from '../enrollment/relayed-renewal.js';
import type { ApiContext } from './context.js';
import type { Runner } from './admit-issuance.js';
import { csrFromPem, enrollResponse } from './enroll-route.js';
import { runIssuance } from './issuance.js';
import { bodyWithin } from './read-body.js';
import { admitRelayed } from './in-process-relay.js';

/**
 * Admission of POST /v1/relay/renew, cheapest first: the caller's client certificate must be
 * a configured renewal relay (before anything is read) → the body under its deadline → the
 * per-device rate and the in-flight bound, as the device's own renewal (renewal reserve
 * included). A relay serves many devices, so it has no per-client open-request cap: the
 * broker bounds what it relays (one request per identity, a cap in flight).
 */
export function admitRelayedRenewal(ctx: ApiContext, body: RequestHandler): RequestHandler[] {
  const identify: RequestHandler = async (req, res, next) => {
    res.locals.started = process.hrtime.bigint();
    try {
      res.locals.relay = await requireRelay(peerCertificate(req.socket as TLSSocket, ctx.trustDomain), ctx.renewalRelays, ctx.store);
    } catch (err) {
      res.setHeader('Connection', 'close'); // never drain a body we will not read
      throw err;
    }
    next();
  };
  const read = bodyWithin(body, ctx.bodyTimeoutMs, () => {
    ctx.metrics.connectionTimeouts.inc({ phase: 'body' });
    ctx.refusals.note('body_timeout', 'request body too slow: answered 408 and closed');
  });
  const admit: RequestHandler = (req, res, next) => {
    const relayed = readRelayedRenewal(req.body, csrFromPem);
    const release = admitRelayed(ctx, relayed.device);
    res.locals.relayed = relayed;
    res.locals.run = runIssuance(ctx, 'renew-relayed', req, res, release);
    next();
  };
  return [identify, read, admit];
}

/** POST /v1/relay/renew `{device, serial, csr}` by a renewal relay → the /v1/renew answer for that device. */
export const relayRenewRoute: RequestHandler = async (_req, res) => {
  const ctx = res.locals.ctx as ApiContext;
  const relayed = res.locals.relayed as RelayedRenewalRequest;
  const issued = await (res.locals.run as Runner)(async () => ctx.authority.renew(await relayedPeer(ctx.store, relayed, ctx.trustDomain), relayed.csrDer));
  res.status(201).json(enrollResponse(issued));
};
