import { once } from 'node:events';
import type { Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import type { Aedes } from 'aedes';
import { connectionCapBelow, identifyTlsPeer, raiseFdLimit, type FdLimit, type PeerCertificate } from '@tlsfleet/common';
import { AddressLimiter, canonicalAddress, type Closable } from '../ingress/address-limiter.js';
import { ConnectionBudget } from '../ingress/connection-budget.js';
import { forwardedCertAdmission, forwardedClientAddress } from '../ingress/forwarded-cert-admission.js';
import { createProxyListener } from '../ingress/proxy-listener.js';
import { createWebSocketListener } from '../ingress/websocket-listener.js';
import { tlsFailureReason, wrappedAddress } from '../trust/tls-failure.js';
import { ConnectionGuard, guardConnection, type FrameViolation, type TakesRead } from './connection-guard.js';
import { connectionLog } from './connection-log.js';
import { createHealthServer } from './health-server.js';
import type { BrokerMetrics } from './metrics.js';
import { hostInUrl, type Settings } from './options.js';
import type { TlsMaterial, TrustMaterial } from './reload.js';

export interface Listeners {
  readonly url: string;
  readonly port: number;
  readonly wsUrl: string | undefined;
  readonly healthUrl: string | undefined;
  /** The mqtts listening socket: the TLS server itself, or the PROXY header reader or address gate in front of it. */
  readonly listener: NetServer;
  readonly wsServer: ReturnType<typeof createWebSocketListener> | undefined;
  readonly health: HttpServer | undefined;
  readonly budget: ConnectionBudget;
  readonly fdLimit: FdLimit | undefined;
  /** Every MQTT connection, CONNECT done or not: aedes.close closes only the registered clients. */
  readonly conns: Set<Duplex>;
  /** New TLS material for the mqtts and wss listeners. */
  setSecureContext(material: TlsMaterial): void;
  /** From now on every new connection is closed at once, and /readyz answers 503. */
  startDraining(): void;
}

/**
 * The broker's listeners, listening: mqtts (TLS with a required client certificate, behind
 * a PROXY header reader or a per-address gate when configured), wss when `wsPort` is given,
 * and the plain-HTTP health port when `healthPort` is. Every verified connection, whichever
 * listener accepted it, is handed to Aedes through a ConnectionGuard.
 */
export async function openListeners(deps: { s: Settings; trustDomain: string; metrics: BrokerMetrics; trust: TrustMaterial; aedes: Aedes; takesRead: TakesRead | undefined }): Promise<Listeners> {
  const { s, metrics, trust, aedes } = deps;
  const { opts, logger, trustedProxies, forwarded, connectTimeoutMs, maxPacketBytes, host } = s;
  // Counts even without a limit, for the distinct-addresses gauge.
  const addressLimiter = new AddressLimiter(opts.maxConnectionsPerAddress);
  metrics.clientAddressCount = () => addressLimiter.addresses;
  /** Counts a connection against its client address until it closes; false when over the limit (the refusal counted and logged): the caller closes it. */
  const admitAddress = (listener: 'mqtts' | 'wss', address: string | undefined, connection: Closable): boolean => {
    if (addressLimiter.admit(address, connection)) return true;
    metrics.addressLimitRefusals.inc({ listener });
    connectionLog(logger).refused('limit', 'max_connections_per_address', { client: canonicalAddress(address), listener, limit: addressLimiter.maxPerAddress }, 'per-address connection limit reached: connection closed');
    return false;
  };

  const initialTls = trust.tlsOptions();
  const server: Server = createServer({
    ...initialTls,
    requestCert: true,
    rejectUnauthorized: true,
    handshakeTimeout: connectTimeoutMs,
    // Without it Nagle holds CONNACK behind the TLS 1.3 session tickets until the client's
    // delayed ACK (~40 ms): measured 47 ms secureConnect→CONNACK, 1 ms with it.
    noDelay: true,
  });
  const fdLimit = raiseFdLimit();
  const budget = new ConnectionBudget(opts.maxConnections ?? connectionCapBelow(fdLimit, 100_000), (listener) => metrics.connectionLimitRefusals.inc({ listener }), (refused) => logger.warn({ refused, maxConnections: budget.max }, 'connection limit reached: new connections closed at accept'));
  // Behind a PROXY load balancer every TCP connection comes from the proxy: the client's
  // own address is the header's, kept here by the proxy connection's (address, port).
  const proxied = new Map<string, string>();
  const tupleOf = (socket: Socket) => `${socket.remoteAddress}|${socket.remotePort}`;
  const clientAddress = (socket: Socket): string | undefined => (trustedProxies ? proxied.get(tupleOf(socket)) : undefined) ?? socket.remoteAddress;
  server.on('tlsClientError', (err, socket) => onTlsClientError(err, socket as TLSSocket));
  let draining = false;
  const conns = new Set<Duplex>();
  /**
   * Serves one MQTT byte stream over a verified TLS connection, whichever listener accepted
   * it: the certificate profile gives the identity, the ConnectionGuard carries it (and the
   * ACL) to the connect steps and hooks, and caps packet sizes. `address` is read for logs only.
   */
  const serveStream = (socket: TLSSocket, transport: Duplex, address: () => string | undefined, forwardedPeer?: PeerCertificate) => {
    if (draining) {
      transport.destroy();
      socket.destroy();
      return;
    }
    // A forwarded certificate was verified and profiled already, from the ingress's header.
    const cert = forwardedPeer ? undefined : socket.getPeerCertificate();
    const peer = forwardedPeer ?? (cert?.raw ? identifyTlsPeer(cert, deps.trustDomain) : 'no_cert');
    if (typeof peer === 'string') {
      metrics.handshakeFailures.inc({ reason: 'bad_profile' });
      connectionLog(logger).refused('tls', peer, { address: address() }, 'certificate outside the tlsfleet profile');
      transport.destroy();
      socket.destroy();
      return;
    }
    // The validity periods OpenSSL skips above an anchored intermediate (trust/trust-anchors.ts).
    const anchorFault = forwardedPeer ? undefined : trust.anchors.fault(peer.authorityKeyId, s.now());
    if (anchorFault) {
      metrics.handshakeFailures.inc({ reason: anchorFault });
      connectionLog(logger).refused('tls', anchorFault, { address: address(), issuerKeyId: peer.authorityKeyId }, 'issuing CA outside its validity period');
      transport.destroy();
      socket.destroy();
      return;
    }
    const onViolation = (violation: FrameViolation) => {
      metrics.frameViolations.inc({ violation });
      logger.info({ client: peer.identity.name, violation }, 'connection cut');
    };
    conns.add(transport);
    transport.once('close', () => conns.delete(transport));
    aedes.handle(guardConnection(transport, new ConnectionGuard(peer, { maxPacketBytes, onViolation, tally: metrics.byteTally, addressOf: address, takesRead: deps.takesRead })));
  };
  const onTlsClientError = (err: Error, socket: TLSSocket) => {
    const reason = tlsFailureReason(err, socket.authorizationError);
    metrics.handshakeFailures.inc({ reason });
    connectionLog(logger).refused('tls', reason, { address: clientAddress(socket) ?? wrappedAddress(socket), err: err.message }, 'TLS handshake refused');
    // Node 20 reports a handshake timeout but leaves the socket open.
    socket.destroy();
  };
  server.on('secureConnection', (socket: TLSSocket) => serveStream(socket, socket, () => clientAddress(socket)));
  // The listening socket: the TLS server itself, or the PROXY header reader in front of it.
  let listener: NetServer = server;
  if (trustedProxies) {
    listener = createProxyListener({
      trusted: trustedProxies,
      headerTimeoutMs: connectTimeoutMs,
      onAccepted: (socket, client) => {
        if (!admitAddress('mqtts', client.address, socket)) {
          socket.destroy();
          return;
        }
        const tuple = tupleOf(socket);
        proxied.set(tuple, client.address);
        socket.once('close', () => proxied.delete(tuple));
        logger.debug({ client: client.address, clientPort: client.port, proxy: socket.remoteAddress }, 'PROXY header accepted');
        server.emit('connection', socket);
      },
      onRefused: (reason, peer, detail) => {
        metrics.proxyRefusals.inc({ reason });
        connectionLog(logger).refused('proxy', reason, { proxy: peer.address, detail }, 'connection closed before TLS');
      },
    });
  } else if (opts.maxConnectionsPerAddress !== undefined) {
    // A plain TCP gate, so a connection over the limit costs no TLS handshake.
    listener = createTcpServer({ noDelay: true }, (socket) => {
      if (admitAddress('mqtts', socket.remoteAddress, socket)) server.emit('connection', socket);
      else socket.destroy();
    });
  } else {
    server.on('connection', (socket: Socket) => addressLimiter.admit(socket.remoteAddress, socket));
  }
  // The listening socket, which sees every connection first; the TLS server may be fed by it.
  budget.watch(listener, 'mqtts');
  listener.listen(opts.port ?? 8883, host);
  await once(listener, 'listening');
  const { port } = listener.address() as AddressInfo;
  const url = `mqtts://${hostInUrl(host)}:${port}`;

  // MQTT over WebSockets: its own HTTPS port, the same TLS options and the same stream path.
  let wsServer: ReturnType<typeof createWebSocketListener> | undefined;
  let wsUrl: string | undefined;
  if (opts.wsPort !== undefined) {
    const verifier = trust.forwardedVerifier;
    wsServer = createWebSocketListener({
      tls: initialTls,
      connectTimeoutMs,
      // One message normally carries one MQTT packet; the ConnectionGuard enforces the exact cap.
      maxPayloadBytes: maxPacketBytes + 1024,
      ...(forwarded && verifier
        ? { admit: forwardedCertAdmission({ format: forwarded.format, trusted: forwarded.proxies, verifier, trustDomain: deps.trustDomain, now: s.now }) }
        : {}),
      admitAddress: (req, socket) => admitAddress('wss', forwarded ? forwardedClientAddress(req, forwarded.proxies) : socket.remoteAddress, socket),
      onStream: (socket, stream, fwd) => serveStream(socket, stream, () => (fwd ? fwd.clientAddress : socket.remoteAddress), fwd?.peer),
      onRefused: (reason, socket, detail) => {
        metrics.webSocketRefusals.inc({ reason });
        connectionLog(logger).refused('websocket', reason, { address: detail?.clientAddress ?? socket.remoteAddress, peer: socket.remoteAddress, detail: detail?.why }, 'WebSocket connection refused');
      },
    });
    budget.watch(wsServer, 'wss');
    wsServer.on('tlsClientError', (err, socket) => onTlsClientError(err, socket));
    wsServer.listen(opts.wsPort, host);
    await once(wsServer, 'listening');
    wsUrl = `wss://${hostInUrl(host)}:${(wsServer.address() as AddressInfo).port}`;
  }

  let health: HttpServer | undefined;
  let healthUrl: string | undefined;
  if (opts.healthPort !== undefined) {
    const ws = wsServer;
    health = createHealthServer(metrics.registry, () => !draining && listener.listening && (ws?.listening ?? true), { idleTimeoutMs: connectTimeoutMs, onRefused: (reason) => metrics.healthRefusals.inc({ reason }) });
    const healthHost = opts.healthHost ?? host;
    health.listen(opts.healthPort, healthHost);
    await once(health, 'listening');
    healthUrl = `http://${hostInUrl(healthHost)}:${(health.address() as AddressInfo).port}`;
  }

  return {
    url,
    port,
    wsUrl,
    healthUrl,
    listener,
    wsServer,
    health,
    budget,
    fdLimit,
    conns,
    setSecureContext: (material) => {
      server.setSecureContext(material);
      wsServer?.setSecureContext(material);
    },
    startDraining: () => {
      draining = true;
    },
  };
}
