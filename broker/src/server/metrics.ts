import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { VERSION, type CaValidity } from '@tlsfleet/common';
import { DeliveryLatency } from './delivery-latency.js';

/** What the expiry gauges read at scrape time; the broker points it at its trust bundle and CRL in force. */
export interface BrokerExpirySources {
  cas(): readonly CaValidity[];
  /** nextUpdate of the CRL in force, ms; undefined while none is loaded. */
  crlNextUpdate(): number | undefined;
  now(): number;
}

/** Latency buckets, seconds: 0.5 ms to 10 s. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

/** The broker's Prometheus metrics on a registry of its own. */
export class BrokerMetrics {
  readonly registry = new Registry();
  readonly connectedClients = new Gauge({ name: 'tlsfleet_broker_connected_clients', help: 'MQTT clients with an established session.', registers: [this.registry] });
  readonly handshakeFailures = new Counter({
    name: 'tlsfleet_broker_handshake_failures_total',
    help: 'TLS connections refused before MQTT, by reason: no_cert, unknown_ca, expired, not_yet_valid, bad_profile, timeout, protocol, other.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly proxyRefusals = new Counter({
    name: 'tlsfleet_broker_proxy_refusals_total',
    help: 'Connections closed before TLS in --proxy-protocol mode, by reason: untrusted_proxy, no_header, malformed, timeout, closed (by the peer before a complete header).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly webSocketRefusals = new Counter({
    name: 'tlsfleet_broker_websocket_refusals_total',
    help: 'WebSocket connections refused before MQTT, by reason: not_upgrade, bad_subprotocol, text_frame, timeout (no whole upgrade request within the connect timeout); with --ws-forwarded-cert also untrusted_proxy, no_header, duplicate_header, oversized, malformed, multiple_elements, bad_certificate, unknown_ca, expired, not_yet_valid, bad_profile.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly addressLimitRefusals = new Counter({
    name: 'tlsfleet_broker_address_limit_refusals_total',
    help: 'Connections closed because their client address already had --max-connections-per-address open, by listener: mqtts (before TLS), wss (HTTP 429 before the upgrade).',
    labelNames: ['listener'] as const,
    registers: [this.registry],
  });
  /**
   * How many addresses, never which: a label per address would make one series per device
   * (or per address an attacker sprays from an IPv6 /64) and grow Prometheus without bound.
   * The limiter's debug log names the refused address instead.
   */
  readonly clientAddresses: Gauge = new Gauge({
    name: 'tlsfleet_broker_client_addresses',
    help: 'Distinct client addresses (PROXY header, trusted X-Forwarded-For, else TCP peer) with at least one open connection.',
    registers: [this.registry],
    collect: (): void => this.clientAddresses.set(this.clientAddressCount()),
  });
  /** Read at scrape time; the broker points it at its address limiter. */
  clientAddressCount: () => number = () => 0;
  readonly authFailures = new Counter({
    name: 'tlsfleet_broker_auth_failures_total',
    help: 'CONNECTs refused, by reason: issuer_not_trusted (its issuing CA is not in the current trust bundle, e.g. a retired intermediate), revoked, expired, client_id_mismatch, empty_client_id, will_denied, no_identity.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly aclDenials = new Counter({ name: 'tlsfleet_broker_acl_denials_total', help: 'Publishes and subscriptions the ACL refused, by action: publish, subscribe, receive (a delivery the policy in force no longer allows, e.g. queued for a persistent session before a reload).', labelNames: ['action'] as const, registers: [this.registry] });
  readonly subscriptionsRevoked = new Counter({ name: 'tlsfleet_broker_subscriptions_revoked_total', help: 'Subscriptions removed after they were granted, by reason: acl (an ACL reload no longer allows them; live, stored for an offline persistent session, or found as one is restored).', labelNames: ['reason'] as const, registers: [this.registry] });
  /** Bumped as plain numbers on the per-message path; folded into the counter at scrape time (prom-client's inc measured at ~4% of QoS 0 CPU). */
  readonly messageTally = { in: 0, out: 0 };
  readonly messages: Counter<'direction'> = new Counter({
    name: 'tlsfleet_broker_messages_total',
    help: 'PUBLISH packets received from clients (in) and delivered to clients (out).',
    labelNames: ['direction'] as const,
    registers: [this.registry],
    collect: (): void => foldTally(this.messageTally, this.messages),
  });
  /** Bumped as plain numbers on every read and write; folded into the counter at scrape time, as messageTally. */
  readonly byteTally = { in: 0, out: 0 };
  readonly bytes: Counter<'direction'> = new Counter({
    name: 'tlsfleet_broker_bytes_total',
    help: 'MQTT bytes read from and written to clients.',
    labelNames: ['direction'] as const,
    registers: [this.registry],
    collect: (): void => foldTally(this.byteTally, this.bytes),
  });
  readonly connectTimeouts = new Counter({ name: 'tlsfleet_broker_connect_timeouts_total', help: 'TLS connections closed for not sending CONNECT in time.', registers: [this.registry] });
  readonly queueDrops = new Counter({ name: 'tlsfleet_broker_queue_drops_total', help: 'QoS 1/2 messages dropped because an offline session already had --max-queued-messages queued.', registers: [this.registry] });
  readonly sessionTakeovers = new Counter({ name: 'tlsfleet_broker_session_takeovers_total', help: 'Connections that took over a live session with the same identity.', registers: [this.registry] });
  /** Set by the broker: live sessions whose certificate is revoked or past notAfter now. */
  liveUntrusted: () => number = () => 0;
  readonly revokedSessions: Gauge = new Gauge({ name: 'tlsfleet_broker_revoked_sessions', help: 'Live sessions whose certificate is revoked (by the CRL in force) or past notAfter right now. The broker closes such sessions at once: anything but 0 is an alarm.', registers: [this.registry], collect: (): void => this.revokedSessions.set(this.liveUntrusted()) });
  /** Set by the broker: identities seen from two addresses within the window, in the last hour. */
  sharedIdentityCount: () => number = () => 0;
  readonly sharedIdentities: Gauge = new Gauge({ name: 'tlsfleet_broker_shared_identities', help: 'Identities whose session was taken over from another address, or resumed from another address within 60 s of the last one ending, in the last hour: a certificate used by two devices (alert when above 0).', registers: [this.registry], collect: (): void => this.sharedIdentities.set(this.sharedIdentityCount()) });
  readonly sharedIdentityEvents = new Counter({ name: 'tlsfleet_broker_shared_identity_total', help: 'Sessions accepted for an identity whose previous session came from another address and was still open or ended less than 60 s before.', registers: [this.registry] });
  readonly presenceEvents = new Counter({ name: 'tlsfleet_broker_presence_events_total', help: 'Presence events published on $tlsfleet/events/connected|disconnected/<id>, by type and, for disconnected, reason (client, revoked, expired, takeover, timeout, error, shutdown).', labelNames: ['type', 'reason'] as const, registers: [this.registry] });
  readonly revocationDisconnects = new Counter({ name: 'tlsfleet_broker_revocation_disconnects_total', help: 'Live sessions closed, by reason: revoked, expired, issuer_not_trusted (a trust-bundle reload removed the CA that issued the certificate).', labelNames: ['reason'] as const, registers: [this.registry] });
  readonly frameViolations = new Counter({ name: 'tlsfleet_broker_frame_violations_total', help: 'Connections cut for an oversize or malformed MQTT frame, by violation: packet_too_large, malformed_length.', labelNames: ['violation'] as const, registers: [this.registry] });
  readonly crlState = new Gauge({ name: 'tlsfleet_broker_crl_state', help: 'Revocation list state: 0 fresh, 1 stale (past nextUpdate: alert), 2 missing.', registers: [this.registry] });
  readonly crlNumber = new Gauge({ name: 'tlsfleet_broker_crl_number', help: 'Number of the CRL in force.', registers: [this.registry] });
  /** Registered only with --cluster, so a single broker does not report a Redis link that is down. */
  readonly clusterUp = new Gauge({ name: 'tlsfleet_broker_cluster_up', help: '1 while every connection to Redis (--cluster) is ready, 0 while one is not: cross-instance delivery paused.', registers: [] });
  readonly aclReloads = new Counter({ name: 'tlsfleet_broker_acl_reloads_total', help: 'ACL policy file loads by result: ok, rejected (the last good policy stays).', labelNames: ['result'] as const, registers: [this.registry] });
  readonly limitRefusals = new Counter({
    name: 'tlsfleet_broker_limit_refusals_total',
    help: 'Requests refused by a per-client limit, by limit: subscriptions (SUBACK 0x80), retained_bytes, retained_messages, inflight_qos2 (the connection closed).',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });
  /** Read at scrape time; the broker points it at its per-client limits (installClientLimits). */
  limitState: { subscriptions(): number; retainedBytes(): number; retainedMessages(): number; inflightQos2(): number } = { subscriptions: () => 0, retainedBytes: () => 0, retainedMessages: () => 0, inflightQos2: () => 0 };
  readonly subscriptions: Gauge = new Gauge({ name: 'tlsfleet_broker_subscriptions', help: 'Topic filters held by connected sessions.', registers: [this.registry], collect: (): void => this.subscriptions.set(this.limitState.subscriptions()) });
  readonly retainedBytes: Gauge = new Gauge({ name: 'tlsfleet_broker_retained_bytes', help: 'Bytes (topic + payload) of the retained messages set through this instance.', registers: [this.registry], collect: (): void => this.retainedBytes.set(this.limitState.retainedBytes()) });
  readonly retainedMessages: Gauge = new Gauge({ name: 'tlsfleet_broker_retained_messages', help: 'Retained messages set through this instance.', registers: [this.registry], collect: (): void => this.retainedMessages.set(this.limitState.retainedMessages()) });
  readonly inflightQos2: Gauge = new Gauge({ name: 'tlsfleet_broker_inflight_qos2_messages', help: 'Inbound QoS 2 messages stored awaiting PUBREL, persistent sessions\' included.', registers: [this.registry], collect: (): void => this.inflightQos2.set(this.limitState.inflightQos2()) });
  readonly connectionLimitRefusals = new Counter({ name: 'tlsfleet_broker_connection_limit_refusals_total', help: 'Connections closed at accept because the MQTT listeners already held --max-connections (default below the open-file limit), by listener: mqtts, wss.', labelNames: ['listener'] as const, registers: [this.registry] });
  readonly healthRefusals = new Counter({ name: 'tlsfleet_broker_health_refusals_total', help: 'Health-port connections closed without an answer, by reason: timeout (no whole request within the connect timeout), bad_request, max_connections.', labelNames: ['reason'] as const, registers: [this.registry] });
  readonly slowSubscriberDrops = new Counter({ name: 'tlsfleet_broker_slow_subscriber_drops_total', help: 'QoS 0 messages not delivered to a device with more than --max-subscriber-backlog bytes waiting to be written to it.', registers: [this.registry] });
  readonly slowSubscriberDisconnects = new Counter({ name: 'tlsfleet_broker_slow_subscriber_disconnects_total', help: 'Subscribers cut for reading too slowly, by reason: backlog (a device over --max-subscriber-backlog got a QoS 1/2 message), drain_timeout (a socket that did not drain within the drain timeout).', labelNames: ['reason'] as const, registers: [this.registry] });
  readonly settledRedeliveries = new Counter({ name: 'tlsfleet_broker_settled_redeliveries_total', help: 'Copies of a queued QoS 1/2 message not sent to a resumed persistent session because the client had acknowledged another copy first (a session taken over while messages flow to it).', registers: [this.registry] });
  readonly inbandRenewals = new Counter({
    name: 'tlsfleet_broker_inband_renewals_total',
    help: 'Renew requests received on $tlsfleet/certificates/<id>/renew, by result: issued, or the error code answered (invalid_request, payload_too_large, invalid_csr, not_found, rate_limited, overloaded, revoked, superseded, key_rejected, forbidden, identity_mismatch, internal_error, ...).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  /** Set by the broker with a renewal relay (--relay-provisioning): its service identity and when that certificate expires, ms. */
  relayIdentity: () => { name: string; notAfterMs: number } | undefined = () => undefined;
  readonly relayIdentityExpiry: Gauge<'identity'> = new Gauge({
    name: 'tlsfleet_broker_relay_identity_expiry_seconds',
    help: 'Seconds until the notAfter of the service certificate the renewal relay presents to provisioning (--relay-identity), by identity (its service name); no series without --renewal-relay. The broker renews it at its renewAfter, so a value below a third of its lifetime means its renewals fail.',
    labelNames: ['identity'] as const,
    registers: [this.registry],
    collect: (): void => {
      const relay = this.relayIdentity();
      this.relayIdentityExpiry.reset();
      if (relay !== undefined) this.relayIdentityExpiry.set({ identity: relay.name }, (relay.notAfterMs - Date.now()) / 1000);
    },
  });
  readonly inbandRenewalSeconds = new Histogram({ name: 'tlsfleet_broker_inband_renewal_duration_seconds', help: 'Time from a renew request to the renewer\'s answer (issued or refused), for requests handed to the renewer.', buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30], registers: [this.registry] });

  readonly buildInfo = new Gauge({ name: 'tlsfleet_build_info', help: 'Always 1; the version label is the running tlsfleet release.', labelNames: ['version'] as const, registers: [this.registry] });
  readonly connectSeconds = new Histogram({ name: 'tlsfleet_broker_connect_duration_seconds', help: 'Time from a CONNECT packet to its CONNACK, accepted connections (the connect steps, session restore and takeover).', buckets: LATENCY_BUCKETS, registers: [this.registry] });
  readonly deliverySeconds = new Histogram({ name: 'tlsfleet_broker_delivery_duration_seconds', help: 'Time from a PUBLISH received to its delivery to a subscriber\'s connection, sampled one message in 64 received from clients of this instance; deliveries of a message that crossed from another instance of a cluster are not sampled.', buckets: LATENCY_BUCKETS, registers: [this.registry] });
  readonly delivery = new DeliveryLatency(this.deliverySeconds);
  /** Unset until the broker sets it: the expiry gauges then report nothing. */
  expiry: BrokerExpirySources | undefined;
  readonly caExpiry: Gauge<'ca' | 'subject' | 'serial'> = new Gauge({
    name: 'tlsfleet_broker_ca_expiry_seconds',
    help: 'Seconds until the notAfter of each CA certificate in the trust bundle in force (ca: root or intermediate); negative once expired.',
    labelNames: ['ca', 'subject', 'serial'] as const,
    registers: [this.registry],
    collect: (): void => {
      const sources = this.expiry;
      if (!sources) return;
      this.caExpiry.reset();
      for (const c of sources.cas()) this.caExpiry.set({ ca: c.ca, subject: c.subject, serial: c.serial }, (c.notAfterMs - sources.now()) / 1000);
    },
  });
  readonly crlExpiry: Gauge = new Gauge({
    name: 'tlsfleet_broker_crl_expiry_seconds',
    help: 'Seconds until the nextUpdate of the CRL in force; negative once stale; 0 while none is loaded (tlsfleet_broker_crl_state 2).',
    registers: [this.registry],
    collect: (): void => {
      const sources = this.expiry;
      const next = sources?.crlNextUpdate();
      this.crlExpiry.set(sources === undefined || next === undefined ? 0 : (next - sources.now()) / 1000);
    },
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    this.buildInfo.set({ version: VERSION }, 1);
  }
}

/** Adds a tally's counts to the counter's in/out directions and zeroes the tally. */
function foldTally(tally: { in: number; out: number }, counter: Counter<'direction'>): void {
  const { in: inbound, out: outbound } = tally;
  tally.in = 0;
  tally.out = 0;
  if (inbound > 0) counter.inc({ direction: 'in' }, inbound);
  if (outbound > 0) counter.inc({ direction: 'out' }, outbound);
}
