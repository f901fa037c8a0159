import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { Duplex } from 'node:stream';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import { createWebSocketStream, WebSocketServer } from 'ws';
import type { PeerCertificate } from '@tlsfleet/common';
import type { Admission, ForwardedRefusal } from './forwarded-cert-admission.js';
import { MAX_FORWARDED_HEADER_BYTES } from './forwarded-cert-header.js';

export type WebSocketRefusal = 'not_upgrade' | 'bad_subprotocol' | 'text_frame' | 'timeout' | ForwardedRefusal;

export interface WebSocketListenerOptions {
  /** Trust bundle, server certificate and key: the MQTT listener's, reloaded with it. */
  tls: SecureContextOptions;
  /** Deadline for the TLS handshake and for the upgrade request's headers, ms. */
  connectTimeoutMs: number;
  /** Largest WebSocket message, bytes; larger ones close the connection (ws answers 1009). */
  maxPayloadBytes: number;
  /**
   * Forwarded-certificate mode: no client certificate is asked for on this port and each
   * upgrade's identity is what `admit` makes of the request (an ingress's header). Default
   * (undefined): the TLS client certificate, required.
   */
  admit?: (req: IncomingMessage) => Admission;
  /**
   * The per-address connection limit, asked first on each upgrade request: true counts the
   * TLS socket until it closes; false answers 429 and closes it. Default: no limit.
   */
  admitAddress?: (req: IncomingMessage, tlsSocket: TLSSocket) => boolean;
  /**
   * One upgraded connection: the TLS socket, the binary MQTT byte stream over it and, in
   * forwarded mode, the admitted identity and client address.
   */
  onStream(tlsSocket: TLSSocket, stream: Duplex, forwarded?: { peer: PeerCertificate; clientAddress: string | undefined }): void;
  /** Called, before the TLS socket is closed, for a TLS connection that never carries MQTT. */
  onRefused(reason: WebSocketRefusal, tlsSocket: TLSSocket, detail?: { clientAddress: string | undefined; why: string }): void;
}

/**
 * MQTT over WebSockets (MQTT 3.1.1 §6) on its own HTTPS port, with the same mTLS as the
 * MQTT listener: the handshake already verified the client's chain when the upgrade
 * request arrives (in forwarded mode `admit` judges the request first, before anything else
 * about it). Only the "mqtt" subprotocol is accepted [MQTT-6.0.0-3]; packets must
 * travel in binary frames [MQTT-6.0.0-1]. The caller listens, and reloads the TLS
 * material with `setSecureContext`, as on the MQTT listener.
 */
export function createWebSocketListener(opts: WebSocketListenerOptions): Server {
  const server = createServer({
    ...opts.tls,
    requestCert: opts.admit === undefined,
    rejectUnauthorized: opts.admit === undefined,
    // Room for a forwarded header up to its own cap, so an oversized one is refused (and
    // counted) by admit rather than by Node's 431.
    ...(opts.admit ? { maxHeaderSize: 2 * MAX_FORWARDED_HEADER_BYTES } : {}),
    minVersion: 'TLSv1.2',
    handshakeTimeout: opts.connectTimeoutMs,
    headersTimeout: opts.connectTimeoutMs,
    requestTimeout: opts.connectTimeoutMs,
    // Node checks those deadlines every 30 s by default: a silent connection stayed ~40 s.
    connectionsCheckingInterval: Math.min(1_000, opts.connectTimeoutMs),
    // As on the MQTT listener: Nagle would hold CONNACK behind the session tickets.
    noDelay: true,
  });
  // The subprotocol is checked in 'upgrade' below; ws only echoes it back.
  const wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxPayloadBytes, handleProtocols: () => 'mqtt', perMessageDeflate: false });
  server.on('request', (req: IncomingMessage, res) => {
    opts.onRefused('not_upgrade', req.socket as TLSSocket);
    res.writeHead(426, { upgrade: 'websocket', connection: 'close' }).end();
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const tlsSocket = req.socket as TLSSocket;
    if (opts.admitAddress && !opts.admitAddress(req, tlsSocket)) {
      refuseUpgrade(socket, 429);
      return;
    }
    const admission = opts.admit?.(req);
    if (admission && !admission.ok) {
      opts.onRefused(admission.reason, tlsSocket, { clientAddress: admission.clientAddress, why: admission.detail });
      refuseUpgrade(socket, admission.status);
      return;
    }
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    if (!offered.includes('mqtt')) {
      opts.onRefused('bad_subprotocol', tlsSocket);
      refuseUpgrade(socket, 400);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      // Registered before the stream's own listener, so a text frame never reaches MQTT parsing.
      ws.on('message', (_data, isBinary) => {
        if (isBinary) return;
        opts.onRefused('text_frame', tlsSocket);
        ws.terminate();
      });
      opts.onStream(tlsSocket, createWebSocketStream(ws), admission);
    });
  });
  // A TLS connection that sent no whole upgrade request in time: Node's own 408, counted.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') opts.onRefused('timeout', socket as TLSSocket);
    if (socket.writable && (socket as TLSSocket).bytesWritten === 0) socket.write(`HTTP/1.1 ${err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request'}\r\nConnection: close\r\n\r\n`);
    socket.destroy();
  });
  server.on('close', () => wss.close());
  return server;
}

/**
 * Answers a refused upgrade and destroys the socket once the answer is written: after a
 * bare end() a client that never sends its own FIN would keep a half-open socket (and its
 * file descriptor) for free, as many as it likes.
 */
export function refuseUpgrade(socket: Duplex, status: 400 | 401 | 403 | 429): void {
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () => socket.destroy());
}
