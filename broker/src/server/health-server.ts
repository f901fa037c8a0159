import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Registry } from 'prom-client';

export interface HealthServerOptions {
  /** A connection that has not sent a whole request within this is closed (408), ms; the broker's connect timeout (default 10 s). */
  idleTimeoutMs: number;
  /** Open connections at most: load balancers and Prometheus need a few; default 32. */
  maxConnections?: number;
  /** A connection closed without an answer to a request: timeout (silent or slow), bad_request, max_connections. */
  onRefused?(reason: 'timeout' | 'bad_request' | 'max_connections'): void;
}

/**
 * Plain HTTP for the load balancer's checks: /healthz (process alive), /readyz (accepting
 * and not draining), /metrics (Prometheus). No secrets are served here. A silent or slow
 * connection is closed after `idleTimeoutMs`: Node's defaults (60 s for headers, checked
 * every 30 s) let anyone hold descriptors for a minute and a half each.
 */
export function createHealthServer(registry: Registry, ready: () => boolean, opts: HealthServerOptions = { idleTimeoutMs: 10_000 }): Server {
  const server = createServer(
    {
      headersTimeout: opts.idleTimeoutMs,
      requestTimeout: opts.idleTimeoutMs,
      keepAliveTimeout: Math.min(5_000, opts.idleTimeoutMs),
      connectionsCheckingInterval: Math.min(1_000, opts.idleTimeoutMs),
    },
    (req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET') {
        res.writeHead(405).end();
      } else if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      } else if (path === '/readyz') {
        const ok = ready();
        res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(ok ? '{"status":"ready"}' : '{"status":"draining"}');
      } else if (path === '/metrics') {
        registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
          () => res.writeHead(500).end(),
        );
      } else {
        res.writeHead(404).end();
      }
    },
  );
  server.maxConnections = opts.maxConnections ?? 32;
  server.on('drop', () => opts.onRefused?.('max_connections'));
  // Node's own answer when nobody listens for 'clientError' (lib/_http_server.js socketOnError), counted.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const timeout = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    opts.onRefused?.(timeout ? 'timeout' : 'bad_request');
    if (socket.writable && socket.bytesWritten === 0) socket.write(timeout ? 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n' : 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    socket.destroy();
  });
  return server;
}
