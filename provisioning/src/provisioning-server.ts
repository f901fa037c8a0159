import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { caValidity, connectionCapBelow, isValidName, raiseFdLimit } from '@tlsfleet/common';
import type { Authority } from './authority/authority.js';
import { authorityFromDataDir, crlFilesOf } from './data-dir-authority.js';
import { createApp } from './api/app.js';
import { IssuanceGate, type IssuanceGateOptions } from './api/issuance-gate.js';
import { DataDir } from './data-dir.js';
import { createLogger, type Logger } from './logger.js';
import { ProvisioningMetrics } from './metrics.js';
import { checkingIntervalFor, guardConnections } from './server/connection-guard.js';
import { RefusalLog } from './server/refusal-log.js';
import { startMetricsServer } from './server/metrics-server.js';
import { describeStore, openStore } from './storage/open-store.js';
import { DEFAULT_RETENTION_MS, RetentionPruner } from './retention-pruner.js';
import { crlUrlOf } from './public-url.js';
import type { Store } from './storage/store.js';
import { enrollHook, type EnrollHookOptions } from './hooks/enroll-hook.js';
import { WebhookDeliverer, type WebhookOptions } from './webhooks/deliverer.js';
import type { ApiContext } from './api/context.js';
import { inProcessRelay, type RelayedRenewal, type RenewAnswer } from './api/in-process-relay.js';

export interface ProvisioningOptions {
  dataDir: string;
  /** Default 127.0.0.1; use 0.0.0.0 to serve other hosts. */
  host?: string;
  /** Default 8443; 0 picks a free port. */
  port?: number;
  /** Default: the store `storeUrl` names. */
  store?: Store;
  /** "sqlite" or a postgres:// URL (several instances on one database); default the SQLite file in the data dir. Ignored when `store` is given. */
  storeUrl?: string;
  gate?: IssuanceGateOptions;
  /** Largest request body, bytes; default 16 KiB. */
  maxBodyBytes?: number;
  /** Time an enrollment or renewal body may take to arrive after its headers, ms; default 5 s. Later: 408 `request_timeout`, connection closed. */
  bodyTimeoutMs?: number;
  /** Silence allowed before the TLS handshake is done and before each request's headers, ms; default 15 s. */
  idleTimeoutMs?: number;
  /** Connections open at once; default 10,000. Always kept below the open-file limit (raised to its hard limit at start). */
  maxConnections?: number;
  crlValiditySeconds?: number;
  /** `--renew-expired-within`: a certificate that expired less than this ago may renew at POST /v1/renew-expired, ms; default 0, off (no such route). */
  renewExpiredWithinMs?: number;
  /** `--public-url`: the https URL relying parties reach this service at; issued certificates then name `<it>/v1/crl` as CRL Distribution Point. Default none. */
  publicUrl?: string;
  /** `--retention`: expired certificates and spent or expired tokens older than this go, ms; 0 keeps everything. Default 90 days. */
  retentionMs?: number;
  /** The admin bearer token (`provisioning --admin-token-file`); default: the data dir's admin.token. */
  adminToken?: string;
  /** Also serve /metrics over plain HTTP on 127.0.0.1 at this port (0: a free one); default off. */
  metricsPort?: number;
  /** `--enroll-hook` (and `--hook-ca`): asked before each new enrollment is issued; default none. */
  enrollHook?: EnrollHookOptions;
  /** `--webhook` (repeatable), `--webhook-secret-file`, `--hook-ca`: where enrolled, renewed and revoked events go; default none. */
  webhooks?: WebhookOptions;
  /** `--renewal-relay NAME` (repeatable): service identities that may relay a device's in-band renewal (POST /v1/relay/renew); default none. */
  renewalRelays?: readonly string[];
  logger?: Logger;
}

export interface RunningProvisioning {
  readonly url: string;
  readonly port: number;
  /** http://127.0.0.1:P/metrics with `metricsPort`. */
  readonly metricsUrl?: string;
  readonly server: Server;
  readonly authority: Authority;
  /** In-band renewal for a broker in this process: POST /v1/relay/renew's checks and admission, without HTTP. */
  renewRelayed(req: RelayedRenewal): Promise<RenewAnswer>;
  /** Stops accepting, lets in-flight requests finish for up to `graceMs` (default 10 s), closes the store. */
  close(graceMs?: number): Promise<void>;
}

/** Loads the data dir, opens the store and serves the API over HTTPS (client certificate requested, not required). */
export async function startProvisioning(opts: ProvisioningOptions): Promise<RunningProvisioning> {
  const dataDir = DataDir.open(opts.dataDir);
  const logger = opts.logger ?? createLogger('provisioning');
  const trustDomain = dataDir.config.trustDomain;
  const caBundlePem = dataDir.read('caBundle');
  const adminToken = opts.adminToken ?? dataDir.readSecret('adminToken').trim();
  const metrics = new ProvisioningMetrics();
  // A bad hook URL stops the start before the store opens.
  const approveEnrollment = opts.enrollHook && enrollHook(opts.enrollHook, logger, metrics);
  // The URL is logged only with its password masked.
  const store =
    opts.store ?? (await openStore(opts.storeUrl, dataDir.path('database'), { onError: (err) => logger.warn({ err }, 'idle store connection failed') }));
  if (!opts.store) logger.info({ store: describeStore(opts.storeUrl) }, 'store open');
  // Without receivers it still runs: it drops the events no one is configured to receive.
  const deliverer = new WebhookDeliverer(store.outbox(), { retentionMs: opts.retentionMs, ...(opts.webhooks ?? { urls: [] }) }, logger, metrics);
  const crlDistributionPoint = opts.publicUrl === undefined ? undefined : crlUrlOf(opts.publicUrl);
  const authority = authorityFromDataDir(dataDir, store, { crlValiditySeconds: opts.crlValiditySeconds, crlDistributionPoint, approveEnrollment, renewExpiredWithinMs: opts.renewExpiredWithinMs });
  const crlPublisher = crlFilesOf(dataDir, authority, logger);
  // A data dir the service cannot write still serves /v1/crl: log, do not refuse to start.
  await crlPublisher.publish().catch((err: unknown) => logger.error({ err, path: dataDir.path('crl') }, 'cannot publish the CRL file'));
  let draining = false;
  metrics.expiry = {
    cas: caValidity(dataDir.read('intermediateCert'), caBundlePem),
    crlNextUpdate: async () => (await authority.crl()).nextUpdate.getTime(),
    countExpiring: (now, withinMs) => store.countExpiring(now, now + withinMs),
    fleetFindings: async (now) => {
      const a = await store.fleetAudit({ now, expiringBefore: now, limit: 0, activeIssuerKeyId: authority.issuerKeyId });
      return { expired: a.expired.count, renewal_overdue: a.renewalOverdue.count, retired_intermediate: a.retiredIssuer.count, issuer_unknown: a.retiredIssuer.unknown, tokens_outstanding: a.tokens.outstanding, tokens_expired: a.tokens.expired };
    },
    now: Date.now,
  };
  const refusals = new RefusalLog(logger);
  const idleTimeoutMs = opts.idleTimeoutMs ?? 15_000;
  const bodyTimeoutMs = opts.bodyTimeoutMs ?? 5_000;
  const maxConnections = connectionCap(opts.maxConnections, logger);
  const relays = opts.renewalRelays ?? [];
  const badRelay = relays.find((name) => !isValidName(name));
  if (badRelay !== undefined) throw new RangeError(`renewalRelays: ${JSON.stringify(badRelay)} is not a service name`);
  const ctx: ApiContext = {
    authority,
    store,
    metrics,
    gate: new IssuanceGate(opts.gate),
    logger,
    trustDomain,
    adminTokenHash: createHash('sha256').update(adminToken).digest(),
    caBundlePem,
    caCertificatesPem: caBundlePem,
    maxBodyBytes: opts.maxBodyBytes ?? 16 * 1024,
    bodyTimeoutMs,
    refusals,
    draining: () => draining,
    crlPublisher,
    renewalRelays: new Set(relays),
  };
  const app = createApp(ctx);
  const server = createServer(
    {
      key: dataDir.readSecret('provisioningKey'),
      cert: dataDir.read('provisioningCert'),
      ca: caBundlePem,
      // Requested so renewal and admin certificates authenticate; not required so
      // enrollment with a token works. Handlers check `authorized` themselves.
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      handshakeTimeout: idleTimeoutMs,
      connectionsCheckingInterval: checkingIntervalFor(idleTimeoutMs),
    },
    app,
  );
  // Slow-loris bounds: a whole request within 30 s; silence and headers as guardConnections says.
  server.requestTimeout = 30_000;
  guardConnections(server, { maxConnections, idleTimeoutMs, metrics, refusals });
  // First: a metrics port in use stops the start before the API listens.
  const metricsServer = opts.metricsPort === undefined ? undefined : await startMetricsServer(metrics.registry, opts.metricsPort, idleTimeoutMs);
  server.listen(opts.port ?? 8443, opts.host ?? '127.0.0.1');
  await once(server, 'listening');
  crlPublisher.start();
  const retentionMs = opts.retentionMs ?? DEFAULT_RETENTION_MS;
  const pruner = retentionMs > 0 ? new RetentionPruner({
    store,
    retentionMs,
    onPruned: (c) => {
      metrics.retentionPruned.inc({ kind: 'certificate' }, c.certificates);
      metrics.retentionPruned.inc({ kind: 'token' }, c.tokens);
      logger.info({ certificates: c.certificates, tokens: c.tokens, retentionMs }, 'retention pruned');
    },
    onError: (err) => logger.warn({ err }, 'retention sweep failed; the next one retries'),
  }) : undefined;
  pruner?.start();
  deliverer.start();
  const { port } = server.address() as AddressInfo;
  const host = opts.host ?? '127.0.0.1';
  const url = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  logger.info({ url, metricsUrl: metricsServer?.url, trustDomain, maxConnections, idleTimeoutMs, bodyTimeoutMs, crlDistributionPoint: crlDistributionPoint ?? null, retentionMs }, 'provisioning listening');

  let closing: Promise<void> | undefined;
  const close = (graceMs = 10_000) =>
    (closing ??= (async () => {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), graceMs);
      await closed;
      clearTimeout(timer);
      await metricsServer?.close();
      await crlPublisher.stop();
      await pruner?.stop();
      await deliverer.stop();
      await store.close();
      logger.info('provisioning stopped');
    })());
  return { url, port, metricsUrl: metricsServer?.url, server, authority, renewRelayed: inProcessRelay(ctx), close };
}

/** The connection cap: the one asked for (default 10,000), kept below the open-file limit after raising it. */
function connectionCap(asked: number | undefined, logger: Logger): number {
  const limit = raiseFdLimit();
  const cap = connectionCapBelow(limit, asked ?? 10_000);
  if (asked !== undefined && cap < asked) logger.warn({ asked, cap, openFileLimit: limit?.soft }, '--max-connections lowered below the open-file limit');
  return cap;
}
