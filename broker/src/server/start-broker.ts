import type { Client } from 'aedes';
import { Acl, DataDir, DEFAULT_POLICY, renewTopic } from '@tlsfleet/common';
import { AclFreshness } from '../acl/acl-freshness.js';
import { loadPolicyFile } from '../acl/policy-file.js';
import { createAdaptedAedes, prepareAedes } from '../aedes/index.js';
import { redactRedisUrl, redisCluster, type RedisCluster } from '../cluster/redis-cluster.js';
import { authorizeForward, authorizePublish, authorizeSubscribe } from '../hooks/authorize.js';
import { authenticate, preConnect } from '../hooks/connect-steps.js';
import { issuedByPinnedIssuer } from '../trust/issuer-pinning.js';
import { isLive } from '../acl/decide.js';
import type { BrokerContext } from './broker-context.js';
import { guardOf } from './connection-guard.js';
import { connectionLog } from './connection-log.js';
import { drain } from './drain.js';
import { openListeners } from './listeners.js';
import { BrokerMetrics } from './metrics.js';
import { resolveOptions, type BrokerOptions, type RunningBroker } from './options.js';
import { TrustMaterial, watchReloads, watchRevocations } from './reload.js';
import { SessionRegistry } from './session-registry.js';
import { announcePresence } from '../presence/presence-events.js';
import { markSessionEnd } from '../presence/session-end.js';
import { DEFAULT_RENEWAL_SETTINGS, RenewalHandler } from '../renewal/renewal-handler.js';

export type { BrokerOptions, RunningBroker } from './options.js';

/**
 * Aedes behind TLS with required client certificates. Only chains that verify to the data
 * dir's trust bundle get a handshake; the identity layer checks the certificate profile;
 * the connect steps check revocation, expiry, clientId and will; the ACL judges every
 * PUBLISH and SUBSCRIBE. Revocations and expiry reach live sessions.
 */
export async function startBroker(opts: BrokerOptions): Promise<RunningBroker> {
  prepareAedes();
  // Options are checked before anything starts listening or watching.
  const s = resolveOptions(opts);
  const { logger, now } = s;
  const dataDir = DataDir.open(opts.dataDir);
  const trustDomain = dataDir.config.trustDomain;
  const metrics = new BrokerMetrics();
  const cluster = opts.cluster === undefined ? undefined : openCluster(opts.cluster, opts.clusterCa, metrics, logger);

  const trust = new TrustMaterial(dataDir, s, metrics);
  const ctx: BrokerContext = {
    logger,
    metrics,
    acl: new Acl(opts.aclFile ? loadPolicyFile(opts.aclFile) : DEFAULT_POLICY),
    // Peer serials are canonical already; this runs on every PUBLISH.
    isRevoked: (serial) => trust.revocations.current?.revoked.has(serial) ?? false,
    trustedIssuers: trust.issuerKeyIds,
    now,
  };
  if (opts.renewerIdentity) metrics.relayIdentity = opts.renewerIdentity;
  const renewals = new RenewalHandler(
    { logger, metrics, aedes: () => ctx.aedes },
    { renewer: opts.renewer, maxInFlight: opts.maxRelayedRenewals ?? DEFAULT_RENEWAL_SETTINGS.maxInFlight, timeoutMs: opts.renewalTimeoutMs ?? DEFAULT_RENEWAL_SETTINGS.timeoutMs },
  );
  const { aedes, takesRead, limitState } = await createAdaptedAedes({
    ctx,
    hooks: { preConnect: preConnect(ctx), authenticate: authenticate(ctx), authorizePublish: authorizePublish(ctx), authorizeSubscribe: authorizeSubscribe(ctx), authorizeForward: authorizeForward(ctx) },
    connectTimeoutMs: s.connectTimeoutMs,
    limits: s.limits,
    maxQueuedMessages: opts.maxQueuedMessages ?? 1000,
    onQueueDrop: (clientId) => {
      metrics.queueDrops.inc();
      logger.debug({ client: clientId }, 'offline queue full: message dropped');
    },
    cluster,
    // Aedes waits on its persistence without a deadline; in a cluster that is Redis.
    start: cluster ? (create) => cluster.startWithin(create, opts.clusterTimeoutMs ?? 30_000, opts.signal) : undefined,
    publishRelay: opts.publishRelay !== false,
    connectSeconds: metrics.connectSeconds,
    onRenewRequest: (client, packet) => {
      const peer = guardOf(client.conn)?.peer;
      // The ACL lets only the session's own renew topic through; checked again all the same.
      if (peer && packet.topic === renewTopic(peer.identity.name)) renewals.handle(peer.identity.name, peer.serial, Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload));
    },
  });
  ctx.aedes = aedes;
  metrics.limitState = limitState;

  const sessions = new SessionRegistry(now, (client) => {
    metrics.revocationDisconnects.inc({ reason: 'expired' });
    logger.info({ client: client.id }, 'certificate expired: session closed');
    markSessionEnd(client, 'expired');
    client.close();
  });
  const aclFreshness = new AclFreshness(ctx, aedes);
  /** Closes a live session whose issuer is no longer in the trust bundle; true when it did. */
  const closeIfIssuerUntrusted = (client: Client): boolean => {
    const peer = guardOf(client.conn)?.peer;
    if (!peer || issuedByPinnedIssuer(peer, ctx.trustedIssuers)) return false;
    metrics.revocationDisconnects.inc({ reason: 'issuer_not_trusted' });
    logger.info({ client: client.id, serial: peer.serial, issuerKeyId: peer.authorityKeyId }, 'issuer no longer in the trust bundle: session closed');
    markSessionEnd(client, 'revoked');
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
  // After the 'client' handler above: a session it closes is never announced.
  const presence = announcePresence(aedes, ctx);
  metrics.liveUntrusted = () => sessions.clients().filter((client) => {
    const guard = guardOf(client.conn);
    return guard !== undefined && !isLive(ctx, guard);
  }).length;
  aedes.on('connectionError', (client, err) => {
    if (!/connect did not arrive/i.test(err.message)) return void logger.debug({ client: client?.id, err: err.message }, 'connection error');
    metrics.connectTimeouts.inc();
    connectionLog(logger).refused('connect', 'connect_timeout', { address: guardOf(client?.conn)?.clientAddress });
  });
  (aedes as unknown as NodeJS.EventEmitter).on('error', (err: Error) => logger.error({ err }, 'broker error'));

  const stopRevocations = watchRevocations({ s, dataDir, trust, sessions, metrics, logger });
  const listeners = await openListeners({ s, trustDomain, metrics, trust, aedes, takesRead });
  const reloads = watchReloads({ s, dataDir, ctx, trust, aclFreshness, sessions, closeIfIssuerUntrusted, setSecureContext: listeners.setSecureContext });
  const { url, port, wsUrl, healthUrl } = listeners;

  logger.info({ url, wsUrl, healthUrl, maxConnections: listeners.budget.max, fdLimit: listeners.fdLimit, trustDomain, anchoredIntermediates: trust.anchors.anchored, maxPacketBytes: s.maxPacketBytes, tlsSessionTickets: opts.tlsSessionTickets === true, trustedProxies: s.trustedProxies?.cidrs, wsForwardedCert: s.forwarded?.format, forwardingProxies: s.forwarded?.proxies.cidrs }, 'broker listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    wsUrl,
    healthUrl,
    metrics,
    reload: () => {
      reloads.acl();
      reloads.tls();
    },
    close: (graceMs = 10_000) =>
      (closing ??= drain({
        aedes,
        listeners,
        sessions,
        presence,
        cluster,
        stopWatching: () => {
          reloads.unwatch();
          stopRevocations();
        },
        healthLingerMs: opts.healthLingerMs ?? 1000,
        logger,
      }, graceMs)),
  };
}

/** The Redis links of `--cluster`, watched: their state in the metrics and the log. */
function openCluster(url: string, ca: string | undefined, metrics: BrokerMetrics, logger: BrokerContext['logger']): RedisCluster {
  const cluster = redisCluster(url, {
    onLink: (up) => {
      metrics.clusterUp.set(up ? 1 : 0);
      if (up) logger.info({ cluster: redactRedisUrl(url) }, 'Redis link up');
      else logger.warn({ cluster: redactRedisUrl(url) }, 'Redis link lost: cross-instance delivery paused (reconnecting)');
    },
    // ioredis' messages name host and port, never the password.
    onError: (message) => logger.warn({ err: message }, 'Redis connection error (reconnecting)'),
  }, { ca });
  metrics.registry.registerMetric(metrics.clusterUp);
  logger.info({ cluster: redactRedisUrl(url) }, 'sharing sessions and messages through Redis');
  return cluster;
}
