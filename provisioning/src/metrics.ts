import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { VERSION, type CaValidity } from '@tlsfleet/common';

/** What the expiry gauges read at scrape time; startProvisioning points it at the data dir, authority and store. */
export interface ExpirySources {
  /** The CA certificates in force (intermediate and roots). */
  readonly cas: readonly CaValidity[];
  /** nextUpdate of the CRL the service publishes, ms. */
  crlNextUpdate(): Promise<number>;
  /** Devices whose current certificate is unrevoked and expires within `withinMs` of `now`. */
  countExpiring(now: number, withinMs: number): Promise<number>;
  /** The fleet audit's counts at `now` (audit/fleet-report.ts), by finding. */
  fleetFindings(now: number): Promise<Record<FleetFinding, number>>;
  now(): number;
}

/** The label values of tlsfleet_provisioning_fleet_findings. */
export type FleetFinding = 'expired' | 'renewal_overdue' | 'retired_intermediate' | 'issuer_unknown' | 'tokens_outstanding' | 'tokens_expired';

/** The windows of tlsfleet_provisioning_certificates_expiring, by label. */
const EXPIRING_WITHIN: Readonly<Record<string, number>> = { '24h': 24 * 3_600_000, '7d': 7 * 24 * 3_600_000 };
/** A scrape within this of the last one reuses its store counts (ms): several Prometheus replicas, one query. */
const EXPIRING_CACHE_MS = 5_000;
/** The fleet findings scan every current certificate: at most one count a minute, however often Prometheus scrapes. */
const FINDINGS_CACHE_MS = 60_000;

/** The service's Prometheus metrics, on a registry of its own (no global state). */
export class ProvisioningMetrics {
  readonly registry = new Registry();
  readonly enrollments = new Counter({
    name: 'tlsfleet_provisioning_enrollments_total',
    help: 'Enrollments by result: issued, replayed, or the error code.',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly renewals = new Counter({
    name: 'tlsfleet_provisioning_renewals_total',
    help: 'Renewals by result: issued, replayed (same old certificate and new key within 10 minutes), or the error code of a refusal.',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly tokenFailures = new Counter({
    name: 'tlsfleet_provisioning_token_failures_total',
    help: 'Refused enrollment tokens by error code.',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly revocations = new Counter({
    name: 'tlsfleet_provisioning_revocations_total',
    help: 'Certificates revoked through this instance.',
    registers: [this.registry],
  });
  readonly issuanceSeconds = new Histogram({
    name: 'tlsfleet_provisioning_issuance_duration_seconds',
    help: 'Time to answer an enrollment or renewal, from request to response.',
    labelNames: ['operation'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly issuanceInFlight = new Gauge({
    name: 'tlsfleet_provisioning_issuance_in_flight',
    help: 'Enrollment and renewal requests being served.',
    registers: [this.registry],
  });
  readonly shed = new Counter({
    name: 'tlsfleet_provisioning_issuance_shed_total',
    help: 'Issuance requests refused to protect the service, by reason: overloaded, rate_limited (the per-client rate), client_in_flight (the per-client open requests).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly issuanceBodiesReading = new Gauge({
    name: 'tlsfleet_provisioning_issuance_bodies_reading',
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

  readonly enrollHook = new Counter({
    name: 'tlsfleet_provisioning_enroll_hook_total',
    help: 'Answers of the enrollment hook (--enroll-hook) by result: allowed, denied (allow: false), status (not 2xx), invalid_answer, timeout, connection, too_large. Only allowed issues.',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly enrollHookSeconds = new Histogram({
    name: 'tlsfleet_provisioning_enroll_hook_duration_seconds',
    help: 'Time the enrollment hook took to answer (or to fail), seconds.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  readonly webhookDeliveries = new Counter({
    name: 'tlsfleet_provisioning_webhook_deliveries_total',
    help: 'Webhook delivery attempts (--webhook) by result: delivered (2xx), status (another status), timeout, connection, too_large. Every failure is retried.',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly webhookBacklog = new Gauge({
    name: 'tlsfleet_provisioning_webhook_backlog',
    help: 'Webhook deliveries not yet done (all receivers, all instances), as of the last delivery round.',
    registers: [this.registry],
  });
  readonly webhookFailing = new Gauge({
    name: 'tlsfleet_provisioning_webhook_failing',
    help: 'Webhook deliveries not yet done that failed at least once, as of the last delivery round.',
    registers: [this.registry],
  });

  readonly buildInfo = new Gauge({ name: 'tlsfleet_build_info', help: 'Always 1; the version label is the running tlsfleet release.', labelNames: ['version'] as const, registers: [this.registry] });
  /** Unset until startProvisioning sets it: the gauges below then report nothing. */
  expiry: ExpirySources | undefined;
  private expiringCache: { at: number; counts: Record<string, number> } | undefined;
  private findingsCache: { at: number; counts: Record<FleetFinding, number> } | undefined;
  readonly caExpiry: Gauge<'ca' | 'subject' | 'serial'> = new Gauge({
    name: 'tlsfleet_provisioning_ca_expiry_seconds',
    help: 'Seconds until the notAfter of each CA certificate in force (ca: intermediate, the issuing one, or root); negative once expired.',
    labelNames: ['ca', 'subject', 'serial'] as const,
    registers: [this.registry],
    collect: (): void => {
      const sources = this.expiry;
      if (!sources) return;
      for (const c of sources.cas) this.caExpiry.set({ ca: c.ca, subject: c.subject, serial: c.serial }, (c.notAfterMs - sources.now()) / 1000);
    },
  });
  readonly crlExpiry: Gauge = new Gauge({
    name: 'tlsfleet_provisioning_crl_expiry_seconds',
    help: 'Seconds until the nextUpdate of the CRL the service publishes (/v1/crl); relying parties refuse it once negative.',
    registers: [this.registry],
    collect: async (): Promise<void> => {
      const sources = this.expiry;
      if (sources) this.crlExpiry.set((await sources.crlNextUpdate() - sources.now()) / 1000);
    },
  });
  readonly certificatesExpiring: Gauge<'within'> = new Gauge({
    name: 'tlsfleet_provisioning_certificates_expiring',
    help: 'Devices whose current certificate is unrevoked and expires within the window (within: 24h, 7d); counted from the store at scrape time, cached 5 s.',
    labelNames: ['within'] as const,
    registers: [this.registry],
    collect: async (): Promise<void> => {
      const sources = this.expiry;
      if (!sources) return;
      const now = sources.now();
      if (!this.expiringCache || now - this.expiringCache.at >= EXPIRING_CACHE_MS || now < this.expiringCache.at) {
        const counts: Record<string, number> = {};
        for (const [within, ms] of Object.entries(EXPIRING_WITHIN)) counts[within] = await sources.countExpiring(now, ms);
        this.expiringCache = { at: now, counts };
      }
      for (const [within, n] of Object.entries(this.expiringCache.counts)) this.certificatesExpiring.set({ within }, n);
    },
  });

  readonly fleetFindings: Gauge<'finding'> = new Gauge({
    name: 'tlsfleet_provisioning_fleet_findings',
    help: 'The fleet audit (GET /v1/audit/fleet) by finding: expired, renewal_overdue (past two thirds of the lifetime, not renewed: alert), retired_intermediate (live certificates of an intermediate that no longer signs), issuer_unknown, tokens_outstanding, tokens_expired; counted from the store at scrape time, at most once a minute.',
    labelNames: ['finding'] as const,
    registers: [this.registry],
    collect: async (): Promise<void> => {
      const sources = this.expiry;
      if (!sources) return;
      const now = sources.now();
      if (!this.findingsCache || now - this.findingsCache.at >= FINDINGS_CACHE_MS || now < this.findingsCache.at) this.findingsCache = { at: now, counts: await sources.fleetFindings(now) };
      for (const [finding, n] of Object.entries(this.findingsCache.counts)) this.fleetFindings.set({ finding }, n);
    },
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    this.buildInfo.set({ version: VERSION }, 1);
  }
}
