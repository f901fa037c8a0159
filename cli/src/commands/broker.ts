import { checkRelayOptions, ClusterStartError, DEFAULT_CLIENT_LIMITS, FORWARDED_CERT_FORMATS, openRenewalRelay, parseRedisUrl, RelayConfigError, startBroker, TrustedProxies, type ForwardedCertFormat, type RenewalRelay, type RunningBroker } from '@tlsfleet/broker';
import { pemCertificates } from '@tlsfleet/common';
import { duration, port, positiveInt, readInput, required } from '../args.js';
import { UsageError } from '../usage-error.js';
import { abortOnStop, untilSignal } from '../signals.js';
import { serviceLogs } from '../service-logs.js';
import { resolveFlags } from '../config/resolve-flags.js';
import { BROKER } from '../definitions/broker.js';
import { readSecretFile, withPassword } from '../secret-file.js';

export async function brokerCommand(argv: string[]): Promise<number> {
  const f = resolveFlags(BROKER, argv);
  const logger = serviceLogs(f)('broker');
  if (f['cluster-ca'] !== undefined && f.cluster === undefined) throw new UsageError('--cluster-ca only applies with --cluster rediss://...');
  const clusterCa = f['cluster-ca'] === undefined ? undefined : readInput(f['cluster-ca'], '--cluster-ca');
  if (clusterCa !== undefined && pemCertificates(clusterCa).length === 0) throw new UsageError(`--cluster-ca ${f['cluster-ca']}: no PEM certificate in it`);
  if (f['cluster-password-file'] !== undefined && f.cluster === undefined) throw new UsageError('--cluster-password-file only applies with --cluster');
  const cluster = f.cluster === undefined || f['cluster-password-file'] === undefined ? f.cluster : withPassword(f.cluster, readSecretFile(f['cluster-password-file'], '--cluster-password-file'), '--cluster');
  if (cluster !== undefined) {
    // Found before anything starts; the message never repeats a password in the URL.
    try {
      parseRedisUrl(cluster, clusterCa);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  const clusterTimeout = duration(f['cluster-timeout'], '--cluster-timeout');
  if (clusterTimeout !== undefined && f.cluster === undefined) throw new UsageError('--cluster-timeout only applies with --cluster');
  const trustedProxies = f['trusted-proxy'] ?? [];
  if (f['proxy-protocol'] && trustedProxies.length === 0) {
    throw new UsageError('--proxy-protocol needs at least one --trusted-proxy CIDR (the load balancer addresses allowed to send PROXY headers)');
  }
  const forwardedCert = f['ws-forwarded-cert'];
  if (forwardedCert !== undefined) {
    if (!(FORWARDED_CERT_FORMATS as readonly string[]).includes(forwardedCert)) throw new UsageError(`--ws-forwarded-cert must be one of ${FORWARDED_CERT_FORMATS.join(', ')} (the ingress that forwards the client certificate)`);
    if (f['ws-port'] === undefined) throw new UsageError('--ws-forwarded-cert needs --ws-port: it applies to the WebSocket listener only');
    if (trustedProxies.length === 0) throw new UsageError('--ws-forwarded-cert needs at least one --trusted-proxy CIDR (the ingress addresses allowed to forward a client certificate)');
  }
  if (!f['proxy-protocol'] && forwardedCert === undefined && trustedProxies.length > 0) throw new UsageError('--trusted-proxy only applies with --proxy-protocol or --ws-forwarded-cert');
  // A mistyped CIDR is a usage error (exit 2), found before anything starts.
  try {
    new TrustedProxies(trustedProxies);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const crlUrl = f['crl-url'];
  if (crlUrl !== undefined && !crlUrl.startsWith('https://')) throw new UsageError('--crl-url must be an https:// URL (provisioning\'s /v1/crl)');
  const crlInterval = duration(f['crl-interval'], '--crl-interval');
  const connectTimeout = duration(f['connect-timeout'], '--connect-timeout');
  const relayUrl = f['relay-provisioning'];
  const relayIdentity = f['relay-identity'];
  if ((relayUrl === undefined) !== (relayIdentity === undefined)) throw new UsageError('--relay-provisioning and --relay-identity go together: the provisioning URL and the state directory of the identity the broker presents to it');
  let relay: RenewalRelay | undefined;
  if (relayUrl !== undefined && relayIdentity !== undefined) {
    // A bad URL or identity directory is a usage error (exit 2), found before anything listens.
    try {
      checkRelayOptions(relayUrl, relayIdentity);
      relay = await openRenewalRelay({ url: relayUrl, identityDir: relayIdentity, logger });
    } catch (err) {
      if (err instanceof RelayConfigError) throw new UsageError(err.message);
      throw err;
    }
  }
  const signalled = untilSignal(true);
  // Until it listens, a stop signal ends the wait for Redis instead of queueing behind it.
  const startup = abortOnStop();
  let broker: RunningBroker;
  try {
    broker = await startBroker({
      dataDir: required(f['data-dir'], '--data-dir'),
      host: f.host,
      port: port(f.port, '--port', 8883),
      wsPort: f['ws-port'] === undefined ? undefined : port(f['ws-port'], '--ws-port', 0),
      healthPort: f['health-port'] === undefined ? undefined : port(f['health-port'], '--health-port', 0),
      aclFile: f.acl,
      crlUrl,
      crlIntervalMs: crlInterval === undefined ? undefined : crlInterval * 1000,
      maxPacketBytes: positiveInt(f['max-packet-size'], '--max-packet-size', 128 * 1024, 64),
      // Default: below the open-file limit, derived by the broker at start.
      maxConnections: f['max-connections'] === undefined ? undefined : positiveInt(f['max-connections'], '--max-connections', 1),
      // Off unless asked for: devices behind carrier-grade NAT share public addresses.
      maxConnectionsPerAddress: f['max-connections-per-address'] === undefined ? undefined : positiveInt(f['max-connections-per-address'], '--max-connections-per-address', 1),
      maxQueuedMessages: positiveInt(f['max-queued-messages'], '--max-queued-messages', 1000),
      limits: {
        maxSubscriptions: positiveInt(f['max-subscriptions-per-client'], '--max-subscriptions-per-client', DEFAULT_CLIENT_LIMITS.maxSubscriptions),
        maxRetainedBytes: positiveInt(f['max-retained-bytes-per-client'], '--max-retained-bytes-per-client', DEFAULT_CLIENT_LIMITS.maxRetainedBytes),
        maxRetainedMessages: positiveInt(f['max-retained-messages-per-client'], '--max-retained-messages-per-client', DEFAULT_CLIENT_LIMITS.maxRetainedMessages),
        maxInflightQos2: positiveInt(f['max-inflight-qos2'], '--max-inflight-qos2', DEFAULT_CLIENT_LIMITS.maxInflightQos2),
        maxSubscriberBacklogBytes: positiveInt(f['max-subscriber-backlog'], '--max-subscriber-backlog', DEFAULT_CLIENT_LIMITS.maxSubscriberBacklogBytes),
      },
      connectTimeoutMs: connectTimeout === undefined ? undefined : connectTimeout * 1000,
      proxyProtocol: f['proxy-protocol'] ? { trustedProxies } : undefined,
      wsForwardedCert: forwardedCert === undefined ? undefined : { format: forwardedCert as ForwardedCertFormat, trustedProxies },
      cluster,
      clusterCa,
      clusterTimeoutMs: clusterTimeout === undefined ? undefined : clusterTimeout * 1000,
      tlsSessionTickets: f['tls-session-tickets'] === true,
      signal: startup.signal,
      renewer: relay?.renewer,
      renewerIdentity: relay?.presented,
      logger,
    });
  } catch (err) {
    relay?.close();
    if (!(err instanceof ClusterStartError)) throw err;
    process.stderr.write(`tlsfleet broker: ${err.message}\n`);
    // Asked to stop before it served anyone: a clean stop.
    return err.reason === 'aborted' ? 0 : 1;
  } finally {
    startup.dispose();
  }
  // Readiness is the JSON `broker listening` line (url, healthUrl, wsUrl) the broker logs.
  for (;;) {
    const signal = await signalled.next();
    if (signal === 'SIGHUP') {
      broker.reload();
      continue;
    }
    break;
  }
  await broker.close();
  relay?.close();
  return 0;
}
