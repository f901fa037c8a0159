import type { IncomingMessage } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { Duplex } from 'node:stream';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import { createWebSocketStream, WebSocketServer } from 'ws';

export type WebSocketRefusal = 'not_upgrade' | 'bad_subprotocol' | 'text_frame';

export interface WebSocketListenerOptions {
  /** Trust bundle, server certificate and key: the MQTT listener's, reloaded with it. */
  tls: SecureContextOptions;
  /** Deadline for the TLS handshake and for the upgrade request's headers, ms. */
  connectTimeoutMs: number;
  /** Largest WebSocket message, bytes; larger ones close the connection (ws answers 1009). */
  maxPayloadBytes: number;
  /** One upgraded connection: the verified TLS socket and the binary MQTT byte stream over it. */
  onStream(tlsSocket: TLSSocket, stream: Duplex): void;
  /** Called, before the TLS socket is closed, for a TLS connection that never carries MQTT. */
  onRefused(reason: WebSocketRefusal, tlsSocket: TLSSocket): void;
}

/**
 * MQTT over WebSockets (MQTT 3.1.1 §6) on its own HTTPS port, with the same mTLS as the
 * MQTT listener: the handshake already verified the client's chain when the upgrade
 * request arrives. Only the "mqtt" subprotocol is accepted [MQTT-6.0.0-3]; packets must
 * travel in binary frames [MQTT-6.0.0-1]. The caller listens, and reloads the TLS
 * material with `setSecureContext`, as on the MQTT listener.
 */
export function createWebSocketListener(opts: WebSocketListenerOptions): Server {
  const server = createServer({
    ...opts.tls,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    handshakeTimeout: opts.connectTimeoutMs,
    headersTimeout: opts.connectTimeoutMs,
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
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    if (!offered.includes('mqtt')) {
      opts.onRefused('bad_subprotocol', tlsSocket);
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      // Registered before the stream's own listener, so a text frame never reaches MQTT parsing.
      ws.on('message', (_data, isBinary) => {
        if (isBinary) return;
        opts.onRefused('text_frame', tlsSocket);
        ws.terminate();
      });
      opts.onStream(tlsSocket, createWebSocketStream(ws));
    });
  });
  server.on('close', () => wss.close());
  return server;
}
