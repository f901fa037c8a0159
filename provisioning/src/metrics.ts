import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The service's Prometheus metrics, on a registry of its own (no global state). */
export class ProvisioningMetrics {
  readonly registry = new Registry();
  readonly enrollments = new Counter({
    name: 'tlsfleet_enrollments_total',
    help: 'Enrollments by result: issued, replayed, or the error code.',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly renewals = new Counter({
    name: 'tlsfleet_renewals_total',
    help: 'Renewals by result: issued, or the error code.',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly tokenFailures = new Counter({
    name: 'tlsfleet_token_failures_total',
    help: 'Refused enrollment tokens by error code.',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly revocations = new Counter({
    name: 'tlsfleet_revocations_total',
    help: 'Certificates revoked through this instance.',
    registers: [this.registry],
  });
  readonly issuanceSeconds = new Histogram({
    name: 'tlsfleet_issuance_duration_seconds',
    help: 'Time to answer an enrollment or renewal, from request to response.',
    labelNames: ['operation'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly issuanceInFlight = new Gauge({
    name: 'tlsfleet_issuance_in_flight',
    help: 'Enrollment and renewal requests being served.',
    registers: [this.registry],
  });
  readonly shed = new Counter({
    name: 'tlsfleet_issuance_shed_total',
    help: 'Issuance requests refused to protect the service, by reason: overloaded, rate_limited (the per-client rate), client_in_flight (the per-client open requests).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly issuanceBodiesReading = new Gauge({
    name: 'tlsfleet_issuance_bodies_reading',
    help: 'Enrollment and renewal requests whose body is still arriving (read under --body-timeout, before admission).',
    registers: [this.registry],
  });
  readonly connectionTimeouts = new Counter({
    name: 'tlsfleet_provisioning_connection_timeouts_total',
    help: 'Connections closed for silence or slowness, by phase: handshake (no TLS handshake within --idle-timeout), request (no complete request headers in time), body (an issuance body not within --body-timeout, answered 408).',
    labelNames: ['phase'] as const,
    registers: [this.registry],
  });
  readonly connectionsRefused = new Counter({
    name: 'tlsfleet_provisioning_connections_refused_total',
    help: 'TCP connections closed on arrival, by reason: max_connections (--max-connections were open).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly openConnections = new Gauge({
    name: 'tlsfleet_provisioning_open_connections',
    help: 'TCP connections open to the service, TLS handshake done or not.',
    registers: [this.registry],
  });
  readonly maxConnections = new Gauge({
    name: 'tlsfleet_provisioning_max_connections',
    help: 'The connection cap in force (--max-connections, kept below the open-file limit).',
    registers: [this.registry],
  });
  readonly certificateRevocations = new Counter({
    name: 'tlsfleet_provisioning_certificate_revocations_total',
    help: 'Certificates revoked one at a time (POST /v1/certificates/:serial/revoke) through this instance, by RFC 5280 reason; keyCompromise is the one to alert on.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly retentionPruned = new Counter({
    name: 'tlsfleet_provisioning_retention_pruned_total',
    help: 'Rows deleted by retention (--retention), by kind: certificate (expired that long ago), token (spent, cancelled or expired that long ago).',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}
