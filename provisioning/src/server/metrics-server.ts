import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** `--metrics-port`: /metrics over plain HTTP on 127.0.0.1, apart from the public API. */
export interface MetricsServer {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves the registry at GET /metrics on 127.0.0.1:`port` (0: a free port), as the
 * broker's --health-port does: a scraper on the host or a sidecar reads it without a
 * client certificate, and nothing else is served. Bounds as the health server's: a whole
 * request within `idleTimeoutMs`, at most 32 connections.
 */
export async function startMetricsServer(registry: Registry, port: number, idleTimeoutMs: number): Promise<MetricsServer> {
  const server: Server = createServer({ headersTimeout: idleTimeoutMs, requestTimeout: idleTimeoutMs, keepAliveTimeout: Math.min(5_000, idleTimeoutMs) }, (req, res) => {
    if (req.method !== 'GET') return void res.writeHead(405).end();
    if ((req.url ?? '/').split('?')[0] !== '/metrics') return void res.writeHead(404).end();
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      () => res.writeHead(500).end(),
    );
  });
  server.maxConnections = 32;
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
