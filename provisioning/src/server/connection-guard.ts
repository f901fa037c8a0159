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
 *   slowly it trickles bytes (tls handshakeTimeout, set by the caller: a deadline, since
 *   handshake bytes never reach the socket's idle timer);
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

  server.on('connection', (socket: Socket) => {
    metrics.openConnections.inc();
    socket.once('close', () => metrics.openConnections.dec());
  });
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    if (err.code !== 'ERR_TLS_HANDSHAKE_TIMEOUT') return;
    metrics.connectionTimeouts.inc({ phase: 'handshake' });
    refusals.note('handshake_timeout', 'connection closed: no TLS handshake in time', { idleTimeoutMs, client: socket.remoteAddress });
  });

  // Node closes a connection whose request headers are late only when its periodic check
  // runs (every 30 s by default); check often enough that silence ends within the bound.
  server.headersTimeout = Math.min(10_000, idleTimeoutMs);
  server.keepAliveTimeout = Math.min(5_000, idleTimeoutMs);
  // https.Server passes TLS errors (a handshake timeout among them) on as 'clientError' and
  // destroys the socket only when nobody listens; answered as Node would, but counted.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const code = err.code ?? '';
    if (code !== 'ERR_HTTP_REQUEST_TIMEOUT' && !code.startsWith('HPE_')) {
      socket.destroy(); // a TLS-level failure: no HTTP answer is possible
      return;
    }
    if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      metrics.connectionTimeouts.inc({ phase: 'request' });
      refusals.note('request_timeout', 'connection closed: no complete request in time', { headersTimeoutMs: server.headersTimeout, client: socket.remoteAddress });
    }
    // As Node does: answer only where no answer has begun on this connection.
    const answering = (socket as Socket & { _httpMessage?: { headersSent: boolean } })._httpMessage;
    if (socket.writable && !answering?.headersSent) socket.write(ANSWERS[code] ?? BAD_REQUEST);
    socket.destroySoon();
  });
}

/** The interval of Node's check for late request headers, for `idleTimeoutMs` (https.createServer's connectionsCheckingInterval). */
export function checkingIntervalFor(idleTimeoutMs: number): number {
  return Math.max(50, Math.min(1_000, Math.floor(idleTimeoutMs / 5)));
}
