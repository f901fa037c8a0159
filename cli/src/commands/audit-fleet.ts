import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { parseDurationMs, pemX509Certificates, subjectKeyId } from '@tlsfleet/common';
import { DataDir, fleetAudit, openStore, publishedCrlNumber, type FleetAuditReport } from '@tlsfleet/provisioning';
import { positiveInt, required } from '../args.js';
import { resolveFlags } from '../config/resolve-flags.js';
import { AUDIT_FLEET } from '../definitions/offline-commands.js';
import { readBrokerFindings, type BrokerFindings } from '../fleet-audit/broker-findings.js';
import { storeUrlOf } from '../store-url.js';

/** The report `tlsfleet audit-fleet` prints: the store's findings, each broker's, and what needs action. */
export interface FleetAuditOutput extends FleetAuditReport {
  /** The cRLNumber of the data dir's crl.der, the CRL brokers should enforce. */
  publishedCrlNumber: string | undefined;
  brokers: BrokerFindings[];
  /** One line per finding that needs action; empty when none does (exit 0). */
  actions: string[];
}

/**
 * Audits the fleet from the store (it works with provisioning stopped) and from each
 * `--broker-metrics` URL, prints one JSON object and exits 1 when something needs action:
 * a cron job or CI check can alert on the status alone.
 */
export async function auditFleetCommand(argv: string[]): Promise<number> {
  const f = resolveFlags(AUDIT_FLEET, argv);
  const dataDir = DataDir.open(required(f['data-dir'], '--data-dir'));
  const expiringWithinMs = parseDurationMs(f['expiring-within'] ?? '7d') as number;
  const limit = positiveInt(f.limit, '--limit', 100, 0);
  const store = await openStore(storeUrlOf(f), dataDir.path('database'));
  let report: FleetAuditReport;
  try {
    report = await fleetAudit(store, { now: Date.now(), expiringWithinMs, limit, activeIssuerKeyId: activeIssuerKeyId(dataDir) });
  } finally {
    await store.close();
  }
  const published = publishedCrlNumber(await readFile(dataDir.path('crl')).catch(() => Buffer.alloc(0)));
  const brokers = await Promise.all((f['broker-metrics'] ?? []).map(readBrokerFindings));
  const output: FleetAuditOutput = { ...report, publishedCrlNumber: published?.toString(), brokers, actions: actionsOf(report, published, brokers) };
  process.stdout.write(`${JSON.stringify(output, null, 2)}\n`);
  return output.actions.length === 0 ? 0 : 1;
}

/** The key identifier of the data dir's signing intermediate (intermediate-ca.pem). */
function activeIssuerKeyId(dataDir: DataDir): string {
  const [intermediate] = pemX509Certificates(readFileSync(dataDir.path('intermediateCert'), 'utf8'));
  const id = intermediate === undefined ? undefined : subjectKeyId(intermediate.raw);
  if (id === undefined) throw new Error(`${dataDir.path('intermediateCert')} holds no CA certificate with a subject key identifier`);
  return id;
}

function actionsOf(report: FleetAuditReport, published: bigint | undefined, brokers: readonly BrokerFindings[]): string[] {
  const actions: string[] = [];
  if (report.renewalOverdue.count > 0) actions.push(`${report.renewalOverdue.count} device(s) past their renewal point and not renewed (renewalOverdue)`);
  for (const b of brokers) {
    if (b.error !== undefined) {
      actions.push(`broker ${b.url}: not read (${b.error})`);
      continue;
    }
    if (!(b.revokedSessions === 0)) actions.push(`broker ${b.url}: ${b.revokedSessions} session(s) held with a revoked or expired certificate`);
    if (!(b.sharedIdentities === 0)) actions.push(`broker ${b.url}: ${b.sharedIdentities} identity(ies) used from two addresses in the last hour (see its "identity used from two addresses" log lines)`);
    if (published !== undefined && (b.crlNumber === undefined || BigInt(b.crlNumber) < published)) actions.push(`broker ${b.url}: enforces CRL ${b.crlNumber ?? 'none'}, older than the published ${published}`);
  }
  return actions;
}
