import type { Logger } from 'pino';
import { pino } from 'pino';
import { clientLimits, type ClientLimits } from '../limits/client-limits.js';
import { TrustedProxies } from '../ingress/trusted-proxies.js';
import { FORWARDED_CERT_FORMATS, type ForwardedCertFormat } from '../ingress/forwarded-cert-header.js';
import type { BrokerMetrics } from './metrics.js';
import type { Renewer } from '../renewal/renewer.js';

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
   * Relay QoS 0 and QoS 1 messages from the socket's read straight to local subscribers
   * where Aedes would do exactly the same (aedes/publish-relay.ts); default true, and always
   * off in a cluster. Off only to compare against Aedes' own path.
   */
  publishRelay?: boolean;
  /**
   * In-band renewal (docs/reference/mqtt.md#in-band-certificate-renewal): issues the renewal a
   * device asks for on `$tlsfleet/certificates/<id>/renew`. `tlsfleet dev` passes its
   * in-process provisioning, `tlsfleet broker --relay-provisioning` an HTTPS relay
   * (createRenewalRelay). Undefined: every request is answered `not_found` at once.
   */
  renewer?: Renewer;
  /** With a renewal relay: the service identity it presents and when that certificate expires, ms (the metric tlsfleet_broker_relay_identity_expiry_seconds). */
  renewerIdentity?: () => { name: string; notAfterMs: number };
  /** Renew requests at the renewer at once, for the whole broker; past it: `overloaded`. Default 64. */
  maxRelayedRenewals?: number;
  /** How long the renewer gets per request before the device is answered `overloaded`, ms; default 15 s. */
  renewalTimeoutMs?: number;
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

/** The options with their defaults, checked: what the rest of the broker reads. */
export interface Settings {
  readonly opts: BrokerOptions;
  readonly logger: Logger;
  readonly now: () => number;
  readonly host: string;
  readonly maxPacketBytes: number;
  readonly connectTimeoutMs: number;
  readonly limits: Readonly<ClientLimits>;
  /** PROXY protocol's trusted load balancers; undefined when it is off. */
  readonly trustedProxies: TrustedProxies | undefined;
  /** Forwarded-certificate mode of the WebSocket port and its trusted ingresses; undefined when off. */
  readonly forwarded: { readonly format: ForwardedCertFormat; readonly proxies: TrustedProxies } | undefined;
}

/** Checks `opts` and fills in defaults; throws, before anything listens or watches, on a combination that cannot work. */
export function resolveOptions(opts: BrokerOptions): Settings {
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
  return {
    opts,
    logger: opts.logger ?? pino({ name: 'broker', level: process.env.TLSFLEET_LOG_LEVEL ?? 'info' }),
    now: opts.now ?? Date.now,
    host: opts.host ?? '127.0.0.1',
    maxPacketBytes: opts.maxPacketBytes ?? 128 * 1024,
    connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
    limits: clientLimits(opts.limits),
    trustedProxies,
    forwarded: forwarded && forwardingProxies ? { format: forwarded.format, proxies: forwardingProxies } : undefined,
  };
}

/** `host` as a URL writes it: an IPv6 address in brackets. */
export function hostInUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
