import { once } from 'node:events';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { constants as cryptoConstants, X509Certificate } from 'node:crypto';
import { Aedes, type Client } from 'aedes';
import { pino, type Logger } from 'pino';
import { Acl, caValidityOf, connectionCapBelow, DataDir, DEFAULT_POLICY, identifyTlsPeer, raiseFdLimit, pemX509Certificates, type PeerCertificate } from '@tlsfleet/common';
import type { BrokerContext } from './broker-context.js';
import { ConnectionGuard, guardConnection, guardOf, type FrameViolation } from './connection-guard.js';
import { deduplicateDeliveries } from '../aedes/delivery-dedupe.js';
import { installPublishReader } from '../wire/publish-reader.js';
import { installPublishWriter } from '../wire/publish-writer.js';
import { makeQos0Relay } from '../aedes/qos0-relay.js';
import { gateReads } from '../aedes/read-gate.js';
import { createHealthServer } from './health-server.js';
import { authenticate, preConnect } from '../hooks/connect-steps.js';
import { ConnackFirst } from '../aedes/connack-first.js';
import { authorizeForward, authorizePublish, authorizeSubscribe } from '../hooks/authorize.js';
import { loadPolicyFile } from '../acl/policy-file.js';
import { AclFreshness } from '../acl/acl-freshness.js';
import { assertDependencyVersions } from '../aedes/dependency-versions.js';
import { BrokerMetrics } from './metrics.js';
import { boundedPersistence } from '../aedes/bounded-persistence.js';
import { clientLimits, type ClientLimits } from '../limits/client-limits.js';
import { installClientLimits } from '../aedes/install-client-limits.js';
import { connectionLog } from './connection-log.js';
import { timeConnects } from '../aedes/connect-latency.js';
import { boundSubscriberBacklog } from '../aedes/subscriber-backlog.js';
import { redactRedisUrl, redisCluster, type RedisCluster } from '../cluster/redis-cluster.js';
import { RevocationList } from '../revocation/revocation-list.js';
import { pollCrlUrl, watchCrlFile } from '../revocation/crl-sources.js';
import { SessionRegistry } from './session-registry.js';
import { tlsFailureReason, wrappedAddress } from '../trust/tls-failure.js';
import { AddressLimiter, canonicalAddress, type Closable } from '../ingress/address-limiter.js';
import { createProxyListener } from '../ingress/proxy-listener.js';
import { ConnectionBudget } from '../ingress/connection-budget.js';
import { TrustedProxies } from '../ingress/trusted-proxies.js';
import { createWebSocketListener } from '../ingress/websocket-listener.js';
import { forwardedCertAdmission, forwardedClientAddress } from '../ingress/forwarded-cert-admission.js';
import { FORWARDED_CERT_FORMATS, type ForwardedCertFormat } from '../ingress/forwarded-cert-header.js';
import { TrustBundleVerifier } from '../ingress/trust-bundle-verifier.js';
import { issuedByPinnedIssuer, pinnedIssuers, type PinnedIssuers } from '../trust/issuer-pinning.js';
import { TrustAnchors } from '../trust/trust-anchors.js';

export interface BrokerOptions {
  dataDir: string;
  /** Default 127.0.0.1; 0.0.0.0 to serve a network. */
  host?: string;
  /** Default 8883; 0 picks a free port. */
  port?: number;
  /**
   * MQTT over WebSockets (wss, client certificate required) on this port, same host, same
   * identity, ACL and limits; 0 picks a free port; none when undefined. No PROXY protocol.
   */
  wsPort?: number;
  /** Plain-HTTP port for /healthz, /readyz, /metrics; none when undefined. */
  healthPort?: number;
  /** Host of the health port; default the same as `host`. */
  healthHost?: string;
  /** JSON ACL policy file, reloaded on change; default: the default policy of docs/reference/mqtt.md. */
  aclFile?: string;
  /** Also poll this CRL URL (provisioning's /v1/crl), besides the data dir's crl.der. */
  crlUrl?: string;
  /** Poll interval of the CRL sources, ms; default 1000 (file) and 2000 (URL). */
  crlIntervalMs?: number;
  /** Largest MQTT packet, bytes, fixed header included; default 128 KiB. */
  maxPacketBytes?: number;
  /** Concurrent connections of the mqtts and wss listeners together; default below the open-file limit (raised to the hard limit at start), at most 100,000. */
  maxConnections?: number;
  /**
   * Open connections per client address (the PROXY header's, a trusted ingress's
   * X-Forwarded-For entry, else the TCP peer's), both listeners together; unlimited when
   * undefined, because devices behind carrier-grade NAT share public addresses.
   */
  maxConnectionsPerAddress?: number;
  /** QoS 1 messages kept for one offline persistent session before further ones are dropped; default 1,000. */
  maxQueuedMessages?: number;
  /** Per-client bounds (subscriptions, retained messages, QoS 2 in flight, a device's backlog); defaults in DEFAULT_CLIENT_LIMITS. */
  limits?: Partial<ClientLimits>;
  /**
   * Read a PROXY protocol v1/v2 header before TLS (TCP-passthrough load balancers), accepted
   * only from `trustedProxies` (CIDRs, at least one); off when undefined.
   */
  proxyProtocol?: { trustedProxies: readonly string[] };
  /**
   * Forwarded-certificate mode for the WebSocket port (needs `wsPort`): a TLS-terminating
   * ingress (nginx `X-SSL-Client-Cert`, Envoy `x-forwarded-client-cert`) forwards the client
   * certificate, accepted only from `trustedProxies` (CIDRs, at least one) and re-verified
   * against the trust bundle; the port then asks for no client certificate. Off when undefined.
   */
  wsForwardedCert?: { format: ForwardedCertFormat; trustedProxies: readonly string[] };
  /**
   * Issue TLS session tickets so that clients can resume (TLS 1.3 PSK, TLS 1.2 tickets);
   * default false. Off, the broker still sends OpenSSL's two TLS 1.3 tickets, but stateful
   * ones it keeps no cache for: resumption falls back to a full handshake. Why off: with
   * OpenSSL 3.0 each stateless ticket re-decodes the client certificate (two per
   * connection, measured +28 % handshakes per CPU-second without them), each carries the
   * certificate to the client (~1.4 KB, twice, on a device's metered link), and neither the
   * device SDK nor mqtt.js, mosquitto_pub or Paho resume. A resumed connection passes the
   * same connect steps (issuer, revocation, expiry, clientId) as a full handshake.
   */
  tlsSessionTickets?: boolean;
  /** Deadline for the PROXY header, the TLS handshake and, separately, for CONNECT; default 10 s. */
  connectTimeoutMs?: number;
  /** How long the health port keeps answering /readyz 503 after the sessions closed on drain; default 1 s. */
  healthLingerMs?: number;
  /**
   * redis://[user:password@]host:port[/db]: share subscriptions, retained messages, persistent
   * sessions and clientId takeovers with every other instance on the same Redis
   * (mqemitter-redis, aedes-persistence-redis); a single in-memory broker when undefined.
   */
  cluster?: string;
  /** PEM certificates that verify a rediss:// cluster's server; Node's CA store when undefined. */
  clusterCa?: string;
  /** How long start-up waits for Redis before it fails with a ClusterStartError, ms; default 30 s. */
  clusterTimeoutMs?: number;
  /** Aborting it during start-up (SIGTERM) stops the wait for Redis with a ClusterStartError. */
  signal?: AbortSignal;
  /**
   * Relay QoS 0 messages from the socket's read straight to local subscribers where Aedes
   * would do exactly the same (see makeQos0Relay); default true, and always off in a
   * cluster. Off only to compare against Aedes' own path.
   */
  qos0Relay?: boolean;
  logger?: Logger;
  /** Injected clock, ms; default Date.now. */
  now?: () => number;
}

export interface RunningBroker {
  readonly url: string;
  readonly port: number;
  /** wss://host:port of the WebSocket listener, when `wsPort` was given. */
  readonly wsUrl: string | undefined;
  readonly healthUrl: string | undefined;
  readonly metrics: BrokerMetrics;
  /** Re-reads the ACL file and the TLS material (SIGHUP). */
  reload(): void;
  /** Stops accepting, closes sessions, stops watchers; resolves within about `graceMs`. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Aedes behind TLS with required client certificates. Only chains that verify to the data
 * dir's trust bundle get a handshake; the identity layer checks the certificate profile;
 * the connect steps check revocation, expiry, clientId and will; the ACL judges every
 * PUBLISH and SUBSCRIBE. Revocations and expiry reach live sessions.
 */
export async function startBroker(opts: BrokerOptions): Promise<RunningBroker> {
  assertDependencyVersions();
  const dataDir = DataDir.open(opts.dataDir);
  const trustDomain = dataDir.config.trustDomain;
  const logger = opts.logger ?? pino({ name: 'broker', level: process.env.TLSFLEET_LOG_LEVEL ?? 'info' });
  const now = opts.now ?? Date.now;
  const metrics = new BrokerMetrics();
  const maxPacketBytes = opts.maxPacketBytes ?? 128 * 1024;
  const connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
  const limits = clientLimits(opts.limits);
  // Options are checked before anything starts listening or watching.
  const trustedProxies = opts.proxyProtocol ? new TrustedProxies(opts.proxyProtocol.trustedProxies) : undefined;
  if (trustedProxies && trustedProxies.cidrs.length === 0) {
    throw new Error('--proxy-protocol needs at least one --trusted-proxy CIDR (the load balancers\' addresses): without one every connection would be refused');
  }
  const forwarded = opts.wsForwardedCert;
  const forwardingProxies = forwarded ? new TrustedProxies(forwarded.trustedProxies) : undefined;
  if (forwarded) {
    if (!FORWARDED_CERT_FORMATS.includes(forwarded.format)) throw new Error(`--ws-forwarded-cert must be one of ${FORWARDED_CERT_FORMATS.join(', ')}, not ${JSON.stringify(forwarded.format)}`);
    if (opts.wsPort === undefined) throw new Error('--ws-forwarded-cert needs --ws-port: it applies to the WebSocket listener only');
    if (forwardingProxies?.cidrs.length === 0) throw new Error('--ws-forwarded-cert needs at least one --trusted-proxy CIDR (the ingress addresses): anyone else could assert any identity');
  }
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

  const cluster: RedisCluster | undefined = opts.cluster === undefined ? undefined : redisCluster(opts.cluster, {
    onLink: (up) => {
      metrics.clusterUp.set(up ? 1 : 0);
      if (up) logger.info({ cluster: redactRedisUrl(opts.cluster!) }, 'Redis link up');
      else logger.warn({ cluster: redactRedisUrl(opts.cluster!) }, 'Redis link lost: cross-instance delivery paused (reconnecting)');
    },
    // ioredis' messages name host and port, never the password.
    onError: (message) => logger.warn({ err: message }, 'Redis connection error (reconnecting)'),
  }, { ca: opts.clusterCa });
  if (opts.cluster !== undefined) {
    metrics.registry.registerMetric(metrics.clusterUp);
    logger.info({ cluster: redactRedisUrl(opts.cluster) }, 'sharing sessions and messages through Redis');
  }

  // ca-bundle.pem is read once per start and per reload, and everything built from that one
  // text: two reads could straddle a rotation's rewrite and pair a TLS context with the
  // other version's pins.
  /** The bundle's issuer key ids; throws when none is left, since every client would be refused. */
  const pinsOf = (bundle: readonly X509Certificate[]): PinnedIssuers => {
    const pins = pinnedIssuers(bundle);
    if (pins.keyIds.size === 0) throw new Error(`${dataDir.path('caBundle')} holds no CA certificate with a subjectKeyIdentifier: every client certificate would be refused`);
    if (pins.withoutKeyId.length > 0) logger.warn({ cas: pins.withoutKeyId }, 'trust-bundle CAs without a subjectKeyIdentifier: certificates they issue are refused');
    return pins;
  };
  const initialBundlePem = dataDir.read('caBundle');
  const initialBundle = pemX509Certificates(initialBundlePem);
  const pins = pinsOf(initialBundle);
  let anchors = TrustAnchors.of(initialBundle);
  const revocations = new RevocationList({ issuers: initialBundle, now });
  let bundleInForce = initialBundle;
  metrics.expiry = { cas: () => caValidityOf(bundleInForce), crlNextUpdate: () => revocations.current?.nextUpdate?.getTime(), now };
  const forwardedVerifier = forwarded ? new TrustBundleVerifier(initialBundle) : undefined;
  const warnConstrainedCas = () => {
    const cas = forwardedVerifier?.constrainedCas() ?? [];
    if (cas.length > 0) logger.warn({ cas }, 'forwarded certificates that chain through these CAs are refused: their constraints (other than URI name constraints) or critical extensions are checked on the TLS path only');
  };
  warnConstrainedCas();
  const ctx: BrokerContext = {
    logger,
    metrics,
    acl: new Acl(opts.aclFile ? loadPolicyFile(opts.aclFile) : DEFAULT_POLICY),
    // Peer serials are canonical already; this runs on every PUBLISH.
    isRevoked: (serial) => revocations.current?.revoked.has(serial) ?? false,
    trustedIssuers: pins.keyIds,
    now,
  };
  const connackFirst = new ConnackFirst();
  const checkConnect = preConnect(ctx);
  installPublishWriter();
  installPublishReader();
  const createAedes = () => Aedes.createBroker({
    // Aedes registers a client before CONNACK and unregisters it before 'clientDisconnect';
    // after a takeover the id maps to the new connection.
    persistence: boundedPersistence(opts.maxQueuedMessages ?? 1000, (clientId) => (aedes as unknown as { clients: Record<string, unknown> }).clients[clientId] !== undefined, (clientId) => {
      metrics.queueDrops.inc();
      logger.debug({ client: clientId }, 'offline queue full: message dropped');
    }, cluster?.persistence, cluster?.queueLength),
    ...(cluster ? { mq: cluster.mq } : {}),
    connectTimeout: connectTimeoutMs,
    // A subscriber that stops reading is cut after 10 s instead of stalling delivery to all.
    drainTimeout: 10_000,
    // Client ids are device ids (≤ 64 characters), checked against the certificate.
    maxClientsIdLength: 64,
    preConnect: (client, packet, done) => {
      connackFirst.hold(client);
      checkConnect(client, packet, done);
    },
    authenticate: authenticate(ctx),
    authorizePublish: authorizePublish(ctx),
    authorizeSubscribe: authorizeSubscribe(ctx),
    authorizeForward: authorizeForward(ctx),
  });
  // Aedes waits on its persistence without a deadline; in a cluster that is Redis.
  const aedes: Aedes = cluster ? await cluster.startWithin(createAedes, opts.clusterTimeoutMs ?? 30_000, opts.signal) : await createAedes();
  ctx.aedes = aedes;
  deduplicateDeliveries(aedes);
  gateReads(aedes);
  metrics.limitState = installClientLimits(aedes, ctx, limits);
  boundSubscriberBacklog(aedes, ctx, limits.maxSubscriberBacklogBytes);
  // In a cluster every message must cross Redis, which only Aedes' emitter does.
  const takesRead = cluster || opts.qos0Relay === false ? undefined : makeQos0Relay(aedes, ctx);
  aedes.on('connackSent', connackFirst.release);
  timeConnects(aedes, metrics.connectSeconds);

  const sessions = new SessionRegistry(now, (client) => {
    metrics.revocationDisconnects.inc({ reason: 'expired' });
    logger.info({ client: client.id }, 'certificate expired: session closed');
    client.close();
  });
  const aclFreshness = new AclFreshness(ctx, aedes);
  /** Closes a live session whose issuer is no longer in the trust bundle; true when it did. */
  const closeIfIssuerUntrusted = (client: Client): boolean => {
    const peer = guardOf(client.conn)?.peer;
    if (!peer || issuedByPinnedIssuer(peer, ctx.trustedIssuers)) return false;
    metrics.revocationDisconnects.inc({ reason: 'issuer_not_trusted' });
    logger.info({ client: client.id, serial: peer.serial, issuerKeyId: peer.authorityKeyId }, 'issuer no longer in the trust bundle: session closed');
    client.close();
    return true;
  };
  const tally = metrics.messageTally;
  aedes.on('clientReady', (client) => {
    // A reload between the connect steps and here would otherwise leave this session open.
    if (closeIfIssuerUntrusted(client)) return;
    sessions.add(client);
    metrics.connectedClients.set(aedes.connectedClients);
    const peer = guardOf(client.conn)?.peer;
    logger.info({ client: client.id, address: guardOf(client.conn)?.clientAddress, identity: peer?.identity.name, kind: peer?.identity.kind, serial: peer?.serial }, 'client connected');
  });
  aedes.on('clientDisconnect', (client) => {
    sessions.remove(client);
    metrics.connectedClients.set(aedes.connectedClients);
  });
  aedes.on('publish', (_packet, client) => {
    if (client) tally.in++;
  });
  aedes.on('clientError', (client, err) => logger.debug({ client: client?.id, err: err.message }, 'client error'));
  aedes.on('connectionError', (client, err) => {
    if (!/connect did not arrive/i.test(err.message)) return void logger.debug({ client: client?.id, err: err.message }, 'connection error');
    metrics.connectTimeouts.inc();
    connectionLog(logger).refused('connect', 'connect_timeout', { address: guardOf(client?.conn)?.clientAddress });
  });
  (aedes as unknown as NodeJS.EventEmitter).on('error', (err: Error) => logger.error({ err }, 'broker error'));

  revocations.on('update', (revoked: ReadonlySet<string>) => {
    metrics.crlNumber.set(Number(revocations.current?.number ?? 0));
    for (const serial of revoked) {
      const client = sessions.bySerialNumber(serial);
      if (!client) continue;
      metrics.revocationDisconnects.inc({ reason: 'revoked' });
      logger.info({ client: client.id, serial }, 'certificate revoked: session closed');
      client.close();
    }
  });
  revocations.on('stale', () => logger.error('the CRL is past its nextUpdate: still enforcing it, but provisioning is not refreshing it (alert)'));
  revocations.on('rejected', (err: Error) => logger.error({ err: err.message }, 'CRL rejected; keeping the last good one'));
  const crlState = () => metrics.crlState.set({ fresh: 0, stale: 1, missing: 2 }[revocations.state()]);
  const stopCrl = [
    watchCrlFile(dataDir.path('crl'), revocations, { intervalMs: opts.crlIntervalMs ?? 1000, onError: (err) => logger.warn({ err: err.message }, 'CRL file unreadable') }),
    ...(opts.crlUrl
      ? [pollCrlUrl(opts.crlUrl, revocations, { intervalMs: opts.crlIntervalMs ?? 2000, ca: initialBundlePem, onError: (err) => logger.warn({ err: err.message }, 'CRL fetch failed') })]
      : []),
  ];
  const crlStateTimer = setInterval(crlState, 1000).unref();

  // Every context option, for creation and for reloads alike: setSecureContext resets an
  // option it is not given (minVersion would fall back to Node's default).
  const tlsOptions = (trust: TrustAnchors) => ({
    key: dataDir.readSecret('brokerKey'),
    cert: dataDir.read('brokerCert'),
    ca: trust.caPem,
    minVersion: 'TLSv1.2' as const,
    ...(opts.tlsSessionTickets ? {} : { secureOptions: cryptoConstants.SSL_OP_NO_TICKET }),
  });
  const initialTls = tlsOptions(anchors);
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
  /** Every MQTT connection, CONNECT done or not: aedes.close closes only the registered clients. */
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
    const peer = forwardedPeer ?? (cert?.raw ? identifyTlsPeer(cert, trustDomain) : 'no_cert');
    if (typeof peer === 'string') {
      metrics.handshakeFailures.inc({ reason: 'bad_profile' });
      connectionLog(logger).refused('tls', peer, { address: address() }, 'certificate outside the tlsfleet profile');
      transport.destroy();
      socket.destroy();
      return;
    }
    // The validity periods OpenSSL skips above an anchored intermediate (trust-anchors.ts).
    const anchorFault = forwardedPeer ? undefined : anchors.fault(peer.authorityKeyId, now());
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
    aedes.handle(guardConnection(transport, new ConnectionGuard(peer, { maxPacketBytes, onViolation, tally: metrics.byteTally, addressOf: address, takesRead })));
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
    const proxyListener = createProxyListener({
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
    listener = proxyListener;
  } else if (opts.maxConnectionsPerAddress !== undefined) {
    // A plain TCP gate, so a connection over the limit costs no TLS handshake.
    const gate = createTcpServer({ noDelay: true }, (socket) => {
      if (admitAddress('mqtts', socket.remoteAddress, socket)) server.emit('connection', socket);
      else socket.destroy();
    });
    listener = gate;
  } else {
    server.on('connection', (socket: Socket) => addressLimiter.admit(socket.remoteAddress, socket));
  }
  // The listening socket, which sees every connection first; the TLS server may be fed by it.
  budget.watch(listener, 'mqtts');
  listener.listen(opts.port ?? 8883, opts.host ?? '127.0.0.1');
  await once(listener, 'listening');
  const { port } = listener.address() as AddressInfo;
  const host = opts.host ?? '127.0.0.1';
  const hostInUrl = host.includes(':') ? `[${host}]` : host;
  const url = `mqtts://${hostInUrl}:${port}`;

  // MQTT over WebSockets: its own HTTPS port, the same TLS options and the same stream path.
  let wsServer: ReturnType<typeof createWebSocketListener> | undefined;
  let wsUrl: string | undefined;
  if (opts.wsPort !== undefined) {
    wsServer = createWebSocketListener({
      tls: initialTls,
      connectTimeoutMs,
      // One message normally carries one MQTT packet; the ConnectionGuard enforces the exact cap.
      maxPayloadBytes: maxPacketBytes + 1024,
      ...(forwarded && forwardingProxies && forwardedVerifier
        ? { admit: forwardedCertAdmission({ format: forwarded.format, trusted: forwardingProxies, verifier: forwardedVerifier, trustDomain, now }) }
        : {}),
      admitAddress: (req, socket) => admitAddress('wss', forwardingProxies ? forwardedClientAddress(req, forwardingProxies) : socket.remoteAddress, socket),
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
    wsUrl = `wss://${hostInUrl}:${(wsServer.address() as AddressInfo).port}`;
  }

  let health: HttpServer | undefined;
  let healthUrl: string | undefined;
  if (opts.healthPort !== undefined) {
    health = createHealthServer(metrics.registry, () => !draining && listener.listening && (wsServer?.listening ?? true), { idleTimeoutMs: connectTimeoutMs, onRefused: (reason) => metrics.healthRefusals.inc({ reason }) });
    const healthHost = opts.healthHost ?? host;
    health.listen(opts.healthPort, healthHost);
    await once(health, 'listening');
    healthUrl = `http://${healthHost.includes(':') ? `[${healthHost}]` : healthHost}:${(health.address() as AddressInfo).port}`;
  }

  const reloadAcl = () => {
    if (!opts.aclFile) return;
    try {
      ctx.acl = new Acl(loadPolicyFile(opts.aclFile));
      void aclFreshness.rejudge();
      metrics.aclReloads.inc({ result: 'ok' });
      logger.info({ file: opts.aclFile }, 'ACL policy reloaded');
    } catch (err) {
      metrics.aclReloads.inc({ result: 'rejected' });
      logger.error({ file: opts.aclFile, err: (err as Error).message }, 'ACL policy rejected; keeping the last good policy');
    }
  };
  const reloadTls = () => {
    try {
      // New handshakes use the new material; established sessions keep running unless the
      // CA that issued their certificate left the bundle (a retired intermediate).
      const bundle = pemX509Certificates(dataDir.read('caBundle'));
      const reloaded = pinsOf(bundle);
      const reanchored = TrustAnchors.of(bundle);
      const material = tlsOptions(reanchored);
      // The new context has new random ticket keys: a ticket from before the reload cannot
      // resume a session whose chain the new bundle never verified.
      server.setSecureContext(material);
      wsServer?.setSecureContext(material);
      anchors = reanchored;
      bundleInForce = bundle;
      revocations.setIssuers(bundle);
      forwardedVerifier?.replace(bundle);
      warnConstrainedCas();
      ctx.trustedIssuers = reloaded.keyIds;
      logger.info({ issuers: reloaded.keyIds.size, anchoredIntermediates: anchors.anchored }, 'TLS material reloaded');
      for (const client of sessions.clients()) closeIfIssuerUntrusted(client);
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'TLS material rejected; keeping the last good');
    }
  };
  const watched: string[] = [];
  const watch = (file: string, onChange: () => void) => {
    watched.push(file);
    watchFile(file, { interval: 1000, persistent: false }, (cur, prev) => {
      if (cur.mtimeMs !== prev.mtimeMs || cur.size !== prev.size) onChange();
    });
  };
  if (opts.aclFile) watch(opts.aclFile, reloadAcl);
  for (const f of ['caBundle', 'brokerCert', 'brokerKey'] as const) watch(dataDir.path(f), reloadTls);

  logger.info({ url, wsUrl, healthUrl, maxConnections: budget.max, fdLimit, trustDomain, anchoredIntermediates: anchors.anchored, maxPacketBytes, tlsSessionTickets: opts.tlsSessionTickets === true, trustedProxies: trustedProxies?.cidrs, wsForwardedCert: forwarded?.format, forwardingProxies: forwardingProxies?.cidrs }, 'broker listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    wsUrl,
    healthUrl,
    metrics,
    reload: () => {
      reloadAcl();
      reloadTls();
    },
    close: (graceMs = 10_000) =>
      (closing ??= (async () => {
        draining = true;
        for (const f of watched) unwatchFile(f);
        for (const stop of stopCrl) stop();
        clearInterval(crlStateTimer);
        listener.close();
        wsServer?.close();
        sessions.clear();
        // Aedes closes the mq last, with QUITs that never complete while Redis is away.
        if (cluster) {
          cluster.closing();
          aedes.once('closed', () => {
            if (!cluster.isUp()) cluster.disconnect();
          });
        }
        await Promise.race([new Promise<void>((resolve) => aedes.close(() => resolve())), delay(graceMs)]);
        // A connection still before CONNACK would go on talking to Redis after the QUIT below.
        for (const conn of conns) conn.destroy();
        // aedes.close closes the mq (mqemitter-redis) but not the persistence's Redis connection.
        // Not the persistence's destroy(): it drops its connection with commands still pending.
        if (cluster) await cluster.close(1000);
        // Load balancers poll /readyz: keep answering 503 a moment so they see the drain.
        if (health) {
          await delay(opts.healthLingerMs ?? 1000);
          const closed = new Promise<void>((resolve) => health!.close(() => resolve()));
          health.closeIdleConnections();
          await Promise.race([closed, delay(1000)]);
          health.closeAllConnections();
        }
        logger.info('broker stopped');
      })()),
  };
}


function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
