import type { Server } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ProvisioningMetrics } from '../metrics.js';
import type { RefusalLog } from './refusal-log.js';

export interface ConnectionGuardOptions {
  /** Connections open at once; more are closed on arrival. */
  maxConnections: number;
  /** Silence allowed before the TLS handshake is done, and before each request's headers, ms. */
  idleTimeoutMs: number;
  metrics: ProvisioningMetrics;
  refusals: RefusalLog;
}

/** Node's own answers to a request it cannot parse or that came too late (lib/_http_server.js). */
const ANSWERS: Readonly<Record<string, string>> = {
  ERR_HTTP_REQUEST_TIMEOUT: 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n',
  HPE_HEADER_OVERFLOW: 'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 'HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\n\r\n',
};
const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n';

/**
 * Bounds what a silent or idle client can hold (issue 19 item 3):
 * - at most `maxConnections` TCP connections (Node's `server.maxConnections`); the rest are
 *   closed on arrival, counted and logged (rate-limited);
 * - a connection must finish its TLS handshake within `idleTimeoutMs` of arriving, however
 *   slowly it trickles bytes (Node's own handshakeTimeout restarts on every byte);
 * - after the handshake and between keep-alive requests, the next request's headers must
 *   arrive within `idleTimeoutMs` (Node's headersTimeout, checked often enough to hold).
 */
export function guardConnections(server: Server, opts: ConnectionGuardOptions): void {
  const { metrics, refusals, idleTimeoutMs } = opts;
  server.maxConnections = opts.maxConnections;
  metrics.maxConnections.set(opts.maxConnections);
  server.on('drop', (data?: { remoteAddress?: string }) => {
    metrics.connectionsRefused.inc({ reason: 'max_connections' });
    refusals.note('max_connections', 'connection refused: --max-connections are open', { maxConnections: opts.maxConnections, client: data?.remoteAddress });
  });

  const handshaking = new WeakMap<Socket, NodeJS.Timeout>();
  server.on('connection', (socket: Socket) => {
    metrics.openConnections.inc();
    const timer = setTimeout(() => {
      metrics.connectionTimeouts.inc({ phase: 'handshake' });
      refusals.note('handshake_timeout', 'connection closed: no TLS handshake in time', { idleTimeoutMs, client: socket.remoteAddress });
      socket.destroy();
    }, idleTimeoutMs);
    handshaking.set(socket, timer);
    socket.once('close', () => {
      clearTimeout(timer);
      metrics.openConnections.dec();
    });
  });
  server.on('secureConnection', (tls: TLSSocket) => {
    // The TLS socket wraps the TCP socket of the 'connection' event.
    const raw = (tls as TLSSocket & { _parent?: Socket })._parent;
    if (raw) clearTimeout(handshaking.get(raw));
  });

  // Node closes a connection whose request headers are late only when its periodic check
  // runs (every 30 s by default); check often enough that silence ends within the bound.
  server.headersTimeout = Math.min(10_000, idleTimeoutMs);
  server.keepAliveTimeout = Math.min(5_000, idleTimeoutMs);
  // Answering as Node would, but counted: with a listener Node leaves the answer to us.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      metrics.connectionTimeouts.inc({ phase: 'request' });
      refusals.note('request_timeout', 'connection closed: no complete request in time', { headersTimeoutMs: server.headersTimeout, client: socket.remoteAddress });
    }
    // As Node does: answer only where no answer has begun on this connection.
    const answering = (socket as Socket & { _httpMessage?: { headersSent: boolean } })._httpMessage;
    if (socket.writable && !answering?.headersSent) socket.write(ANSWERS[err.code ?? ''] ?? BAD_REQUEST);
    socket.destroySoon();
  });
}

/** The interval of Node's check for late request headers, for `idleTimeoutMs` (https.createServer's connectionsCheckingInterval). */
export function checkingIntervalFor(idleTimeoutMs: number): number {
  return Math.max(50, Math.min(1_000, Math.floor(idleTimeoutMs / 5)));
}
