import express, { Router, type RequestHandler } from 'express';
import type { ApiContext } from './context.js';
import { admitIssuance } from './admit-issuance.js';
import { requireAdmin } from './admin-auth.js';
import { enrollRoute } from './enroll-route.js';
import { renewRoute } from './renew-route.js';
import { renewExpiredRoute } from './renew-expired-route.js';
import { admitRelayedRenewal, relayRenewRoute } from './relay-renew-route.js';
import { tokensRoute } from './tokens-route.js';
import { getDeviceRoute, listDevicesRoute } from './devices-route.js';
import { revokeRoute } from './revoke-route.js';
import { certificateRevokeRoute } from './certificate-revoke-route.js';
import { auditRoute } from './audit-route.js';
import { fleetAuditRoute } from './fleet-audit-route.js';
import { webhookDeliveriesRoute } from './webhooks-route.js';
import { caRoute, crlRoute, previousCrlRoute, healthzRoute, metricsRoute, readyzRoute } from './public-routes.js';
import { estCacertsRoute, estSimpleEnrollRoute, estSimpleReenrollRoute } from '../est/est-routes.js';

/** Every route of the service on one screen (docs/reference/http-api.md). */
export function routes(ctx: ApiContext): Router {
  const json = express.json({ limit: ctx.maxBodyBytes, type: () => true });
  // EST bodies are base64 text under any content type (application/pkcs10 normally).
  const raw = express.raw({ limit: ctx.maxBodyBytes, type: () => true });
  const admin = requireAdmin(ctx);
  const r = Router();
  r.use(withContext(ctx));

  r.get('/.well-known/est/cacerts', estCacertsRoute);
  // Issuance bodies are read under --body-timeout before they take any capacity.
  r.post('/.well-known/est/simpleenroll', ...admitIssuance(ctx, 'enroll', raw), estSimpleEnrollRoute);
  r.post('/.well-known/est/simplereenroll', ...admitIssuance(ctx, 'renew', raw), estSimpleReenrollRoute);

  r.post('/v1/enroll', ...admitIssuance(ctx, 'enroll', json), enrollRoute);
  r.post('/v1/renew', ...admitIssuance(ctx, 'renew', json), renewRoute);
  // --renew-expired-within: off by default, and then the route does not exist (404 not_found).
  if (ctx.authority.renewExpiredWithinMs > 0) r.post('/v1/renew-expired', ...admitIssuance(ctx, 'renew-expired', json), renewExpiredRoute);
  // In-band renewal: a broker relays a device's request (403 unless it is a --renewal-relay).
  r.post('/v1/relay/renew', ...admitRelayedRenewal(ctx, json), relayRenewRoute);
  r.post('/v1/tokens', admin, json, tokensRoute);
  r.get('/v1/devices', admin, listDevicesRoute);
  r.get('/v1/devices/:id', admin, getDeviceRoute);
  r.post('/v1/devices/:id/revoke', admin, revokeRoute);
  r.post('/v1/certificates/:serial/revoke', admin, json, certificateRevokeRoute);
  r.get('/v1/audit', admin, auditRoute);
  r.get('/v1/audit/fleet', admin, fleetAuditRoute);
  r.get('/v1/webhooks/deliveries', admin, webhookDeliveriesRoute);
  r.get('/v1/crl', crlRoute);
  r.get('/v1/crl/previous', previousCrlRoute);
  r.get('/v1/ca', caRoute);

  r.get('/healthz', healthzRoute);
  r.get('/readyz', readyzRoute);
  r.get('/metrics', metricsRoute);
  return r;
}

function withContext(ctx: ApiContext): RequestHandler {
  return (_req, res, next) => {
    res.locals.ctx = ctx;
    next();
  };
}
