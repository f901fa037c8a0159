import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { startFleetEnv, type FleetEnv } from './harness/broker-env.js';
import { metric, sample } from './harness/broker-probe.js';
import { runCli } from './harness/cli.js';
import { request } from './harness/https-client.js';
import { pollUntil } from './harness/poll.js';

// The fleet audit from real processes: GET /v1/audit/fleet on provisioning, and
// `tlsfleet audit-fleet` reading the same store beside it plus the broker's /metrics.

type Finding = { count: number; devices: { device: string; serial: string; notAfter: string; renewAfter: string }[] };
type Report = { at: string; expiringWithinSeconds: number; expired: Finding; expiring: Finding; renewalOverdue: Finding; retiredIntermediate: Finding & { activeIssuerKeyId: string; issuerUnknown: number }; tokens: { outstanding: number; expired: number } };
type CliReport = Report & { publishedCrlNumber: string; brokers: { url: string; revokedSessions?: number; sharedIdentities?: number; crlNumber?: string; error?: string }[]; actions: string[] };

describe('the fleet audit', () => {
  let env: FleetEnv;
  let brokerMetrics: string;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    env = await startFleetEnv();
    brokerMetrics = `${env.healthUrl}/metrics`;
    clients.push(await env.connect(await env.enroll('fa-live', { certTtl: '1h' })));
    // The broker enforces the data dir's CRL once it has loaded it.
    await pollUntil('the broker to load the CRL', () => metric(env.healthUrl, 'tlsfleet_broker_crl_number'), (n) => n > 0);
  }, 60_000);
  afterAll(async () => {
    for (const c of clients) c.end(true);
    await env?.stop();
  });

  /** GET /v1/audit/fleet as the admin, or with no credentials at all (`asAdmin` false). */
  const route = (query: string, asAdmin = true) =>
    request(`${env.url}/v1/audit/fleet${query}`, { ca: env.ca, headers: asAdmin ? { authorization: `Bearer ${env.adminToken}` } : {} });
  const cli = async (...args: string[]) => {
    const r = await runCli(['audit-fleet', '--data-dir', env.dataDir, ...args]);
    return { code: r.code, report: (r.stdout ? JSON.parse(r.stdout) : undefined) as CliReport, stderr: r.stderr };
  };

  it('finds nothing to act on in a healthy fleet: exit 0, the broker on the published CRL', async () => {
    const { code, report, stderr } = await cli('--expiring-within', '30m', '--broker-metrics', brokerMetrics);
    expect(code, stderr).toBe(0);
    expect(report.actions).toEqual([]);
    expect([report.expired.count, report.expiring.count, report.renewalOverdue.count]).toEqual([0, 0, 0]);
    // Every certificate here was signed by the data dir's intermediate, which the store kept.
    expect(report.retiredIntermediate).toMatchObject({ count: 0, issuerUnknown: 0 });
    expect(report.retiredIntermediate.activeIssuerKeyId).toMatch(/^[0-9a-f]{40}$/);
    expect(report.brokers).toEqual([{ url: brokerMetrics, revokedSessions: 0, sharedIdentities: 0, crlNumber: report.publishedCrlNumber }]);
  });

  it('lists certificates expiring within the window, on the route and in the command alike', async () => {
    const res = await route('?expiringWithin=2h&limit=5');
    expect(res.status).toBe(200);
    const body = res.json() as Report;
    expect(body.expiringWithinSeconds).toBe(7200);
    expect(body.expiring.devices.map((d) => d.device)).toContain('fa-live');
    const fromCli = (await cli('--expiring-within', '2h', '--limit', '5')).report;
    expect(fromCli.expiring).toEqual(body.expiring);
  });

  it('refuses the route to anyone but the admin, and bad parameters with invalid_request', async () => {
    expect((await route('', false)).status).toBe(401);
    for (const query of ['?expiringWithin=soon', '?expiringWithin=0s', '?limit=-1', '?limit=5000', '?window=1d']) {
      const res = await route(query);
      expect(res.status, query).toBe(400);
      expect(res.json().error.code, query).toBe('invalid_request');
    }
  });

  it('flags a device past its renewal point (exit 1), then lists it as expired', async () => {
    // Past its renewal point (6 s in) for its last 3 s: wide enough to be seen on a busy host.
    await env.enroll('fa-short', { certTtl: '9s' });
    const overdue = await pollUntil('fa-short past its renewal point', async () => (await route('')).json() as Report, (r) => r.renewalOverdue.devices.some((d) => d.device === 'fa-short'), 2000);
    const listed = overdue.renewalOverdue.devices.find((d) => d.device === 'fa-short')!;
    expect(Date.parse(listed.renewAfter)).toBeLessThan(Date.parse(listed.notAfter));
    expect(Date.parse(listed.renewAfter)).toBeLessThanOrEqual(Date.now());
    const { code, report } = await cli('--broker-metrics', brokerMetrics);
    // Unless it expired in between: then it is no longer overdue but expired.
    if (report.renewalOverdue.count > 0) {
      expect(code).toBe(1);
      expect(report.actions).toEqual([expect.stringMatching(/1 device\(s\) past their renewal point/)]);
    }
    const expired = await pollUntil('fa-short expired', async () => (await route('')).json() as Report, (r) => r.expired.devices.some((d) => d.device === 'fa-short'), 2000);
    expect(expired.renewalOverdue.devices.map((d) => d.device)).not.toContain('fa-short');
  });

  it('counts one-time tokens outstanding, and says when a broker cannot be read (exit 1)', async () => {
    const before = ((await route('')).json() as Report).tokens.outstanding;
    await request(`${env.url}/v1/tokens`, { ca: env.ca, method: 'POST', headers: { authorization: `Bearer ${env.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ deviceId: 'fa-later' }) });
    expect(((await route('')).json() as Report).tokens.outstanding).toBe(before + 1);
    const { code, report } = await cli('--broker-metrics', 'http://127.0.0.1:9/metrics');
    expect(code).toBe(1);
    expect(report.brokers[0]?.error).toBeDefined();
    expect(report.actions.some((a) => a.startsWith('broker http://127.0.0.1:9/metrics: not read'))).toBe(true);
  });

  it('exports each finding as a gauge for Prometheus, counted at the first scrape', async () => {
    const text = (await request(`${env.url}/metrics`, { ca: env.ca })).text();
    const finding = (name: string) => sample(text, 'tlsfleet_provisioning_fleet_findings', { finding: name });
    // fa-short expired in an earlier test; fa-later's token is outstanding.
    expect(finding('expired')).toBeGreaterThanOrEqual(1);
    expect(finding('tokens_outstanding')).toBeGreaterThanOrEqual(1);
    expect([finding('retired_intermediate'), finding('issuer_unknown'), finding('renewal_overdue')]).toEqual([0, 0, 0]);
  });
});
