import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Authority } from './authority/authority.js';
import { authorityFromDataDir, crlFilesOf } from './data-dir-authority.js';
import { createApp } from './api/app.js';
import { IssuanceGate, type IssuanceGateOptions } from './api/issuance-gate.js';
import { DataDir } from './data-dir.js';
import { createLogger, type Logger } from './logger.js';
import { ProvisioningMetrics } from './metrics.js';
import { describeStore, openStore } from './storage/open-store.js';
import type { Store } from './storage/store.js';

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
  crlValiditySeconds?: number;
  logger?: Logger;
}

export interface RunningProvisioning {
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  readonly authority: Authority;
  /** Stops accepting, lets in-flight requests finish for up to `graceMs` (default 10 s), closes the store. */
  close(graceMs?: number): Promise<void>;
}

/** Loads the data dir, opens the store and serves the API over HTTPS (client certificate requested, not required). */
export async function startProvisioning(opts: ProvisioningOptions): Promise<RunningProvisioning> {
  const dataDir = DataDir.open(opts.dataDir);
  const logger = opts.logger ?? createLogger('provisioning');
  const trustDomain = dataDir.config.trustDomain;
  const caBundlePem = dataDir.read('caBundle');
  const adminToken = dataDir.readSecret('adminToken').trim();
  // The URL is logged only with its password masked.
  const store =
    opts.store ?? (await openStore(opts.storeUrl, dataDir.path('database'), { onError: (err) => logger.warn({ err }, 'idle store connection failed') }));
  if (!opts.store) logger.info({ store: describeStore(opts.storeUrl) }, 'store open');
  const authority = authorityFromDataDir(dataDir, store, { crlValiditySeconds: opts.crlValiditySeconds });
  const crlPublisher = crlFilesOf(dataDir, authority, logger);
  // A data dir the service cannot write still serves /v1/crl: log, do not refuse to start.
  await crlPublisher.publish().catch((err: unknown) => logger.error({ err, path: dataDir.path('crl') }, 'cannot publish the CRL file'));
  let draining = false;
  const app = createApp({
    authority,
    store,
    metrics: new ProvisioningMetrics(),
    gate: new IssuanceGate(opts.gate),
    logger,
    trustDomain,
    adminTokenHash: createHash('sha256').update(adminToken).digest(),
    caBundlePem,
    caCertificatesPem: caBundlePem,
    maxBodyBytes: opts.maxBodyBytes ?? 16 * 1024,
    draining: () => draining,
    crlPublisher,
  });
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
    },
    app,
  );
  // Slow-loris bounds: headers within 10 s, a whole request within 30 s.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.listen(opts.port ?? 8443, opts.host ?? '127.0.0.1');
  await once(server, 'listening');
  crlPublisher.start();
  const { port } = server.address() as AddressInfo;
  const host = opts.host ?? '127.0.0.1';
  const url = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  logger.info({ url, trustDomain }, 'provisioning listening');

  let closing: Promise<void> | undefined;
  const close = (graceMs = 10_000) =>
    (closing ??= (async () => {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), graceMs);
      await closed;
      clearTimeout(timer);
      await crlPublisher.stop();
      await store.close();
      logger.info('provisioning stopped');
    })());
  return { url, port, server, authority, close };
}
