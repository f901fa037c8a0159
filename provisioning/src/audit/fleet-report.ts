import { renewAfterMs } from '@tlsfleet/common';
import type { AuditedCertificate, FleetAuditRows } from '../storage/fleet-audit-queries.js';
import type { Store } from '../storage/store.js';

/** One device a finding lists: its current certificate. */
export interface AuditedDevice {
  device: string;
  serial: string;
  notAfter: string;
  renewAfter: string;
  /** The CA key that signed it, for the retired-intermediate finding. */
  issuerKeyId?: string;
}

export interface Finding {
  /** All devices the finding holds for, however many are listed. */
  count: number;
  /** The first `limit` of them, soonest (or, for expired ones, latest) notAfter first. */
  devices: AuditedDevice[];
}

/** GET /v1/audit/fleet and `tlsfleet audit-fleet`: what the store says about the fleet now. */
export interface FleetAuditReport {
  at: string;
  /** The window `expiring` looked ahead, seconds. */
  expiringWithinSeconds: number;
  /** Current certificates, unrevoked, already past notAfter: the device is locked out until it enrolls again. */
  expired: Finding;
  /** Current certificates, unrevoked, expiring within the window. */
  expiring: Finding;
  /**
   * Current certificates past the latest renewal point any certificate carries (3/4 of the
   * lifetime from issuance; each one's own renewAfter is earlier, 60-75 %) and not yet
   * expired: the device has not renewed in time.
   */
  renewalOverdue: Finding;
  /**
   * Live current certificates signed by an intermediate that no longer signs (after a
   * rotation): the device renews onto the new one by itself; retire the old intermediate only
   * once this is 0. `issuerUnknown`: live certificates recorded before the store kept their
   * signer (they renew onto a known one).
   */
  retiredIntermediate: Finding & { activeIssuerKeyId: string; issuerUnknown: number };
  /** One-time tokens neither spent nor cancelled: still valid, or past their expiry. */
  tokens: { outstanding: number; expired: number };
}

export interface FleetAuditOptions {
  now: number;
  /** The key identifier of the intermediate that signs now (lower-case hex). */
  activeIssuerKeyId: string;
  expiringWithinMs: number;
  /** Devices listed per finding. */
  limit: number;
}

/** The fleet audit of `store` at `now`. */
export async function fleetAudit(store: Store, o: FleetAuditOptions): Promise<FleetAuditReport> {
  const rows: FleetAuditRows = await store.fleetAudit({ now: o.now, expiringBefore: o.now + o.expiringWithinMs, limit: o.limit, activeIssuerKeyId: o.activeIssuerKeyId });
  const finding = (f: FleetAuditRows['expired']): Finding => ({ count: f.count, devices: f.sample.map(audited) });
  return {
    at: new Date(o.now).toISOString(),
    expiringWithinSeconds: Math.round(o.expiringWithinMs / 1000),
    expired: finding(rows.expired),
    expiring: finding(rows.expiring),
    renewalOverdue: finding(rows.renewalOverdue),
    retiredIntermediate: { ...finding(rows.retiredIssuer), activeIssuerKeyId: o.activeIssuerKeyId, issuerUnknown: rows.retiredIssuer.unknown },
    tokens: rows.tokens,
  };
}

function audited(c: AuditedCertificate): AuditedDevice {
  return {
    device: c.subject,
    serial: c.serial,
    notAfter: new Date(c.notAfter).toISOString(),
    renewAfter: new Date(renewAfterMs(c.notBefore, c.notAfter, c.serial)).toISOString(),
    ...(c.issuerKeyId === undefined ? {} : { issuerKeyId: c.issuerKeyId }),
  };
}
