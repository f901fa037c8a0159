import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { FleetSummary } from '@tlsfleet/simulators';
import { runCli } from './harness/cli.js';
import { tempDir } from './harness/temp-dir.js';
import { expectRenewalVerdicts } from './harness/simulate-verdicts.js';

const tmp = tempDir('tlsfleet-sim-mass-expiry-');
afterAll(() => tmp.cleanup());

/** 30 SDK devices with 20 s certificates: the whole fleet renews within a few seconds, then the run ends. */
const DEVICES = 30;
const RUN_TIMEOUT_MS = 150_000;

async function massExpiry(name: string, extra: string[] = []): Promise<{ code: number | null; stdout: string; summary: FleetSummary; html: string }> {
  const reportDir = join(tmp.path, name);
  const r = await runCli(['simulate', '--scenario', 'mass-expiry', '--devices', String(DEVICES), '--ramp', '30', '--cert-ttl', '20s', '--publish-interval', '1s', '--duration', '10s', '--workers', '2', '--report', reportDir, ...extra]);
  if (!existsSync(join(reportDir, 'summary.json'))) throw new Error(`no summary (exit ${r.code}):\n${r.stderr}`);
  return { ...r, summary: JSON.parse(readFileSync(join(reportDir, 'summary.json'), 'utf8')) as FleetSummary, html: readFileSync(join(reportDir, 'report.html'), 'utf8') };
}

describe('tlsfleet simulate --scenario mass-expiry', () => {
  it('every device renews in-band through the broker, no message lost, no session dropped, and the report gives the rate, the CPU and the swap waits', async () => {
    const { code, stdout, summary, html } = await massExpiry('inband');
    expectRenewalVerdicts(summary, code);
    expect(summary.scenario.verdicts.map((v) => v.name)).toEqual(expect.arrayContaining(['QoS 1 messages lost', 'sessions dropped after the fleet was up (disconnected events)', 'renewals over MQTT through the broker']));
    expect(summary.config.deviceModel).toBe('sdk');
    expect(summary.totals).toMatchObject({ enrolled: DEVICES, lost: 0, renewalFailures: 0 });
    const r = summary.renewal!;
    expect(r.path).toBe('inband');
    expect(summary.totals.renewals).toBeGreaterThanOrEqual(DEVICES);
    // Counted by the simulator's own broker: every renewal was answered over MQTT.
    expect(r).toMatchObject({ inBand: summary.totals.renewals, https: 0, unknownRoute: 0 });
    expect(r.peakPerSecond).toBeGreaterThan(0);
    expect(r.meanPerSecond).toBeGreaterThan(0);
    expect(r.lastAt! - r.firstAt!).toBeLessThan(60);
    expect(r.provisioningCpuSeconds).toBeGreaterThan(0);
    expect(r.provisioningCpuMsPerRenewal).toBeGreaterThan(0);
    expect(r.swapPublishWait.count).toBeGreaterThan(0);
    expect(r.calmPublishWait.count).toBeGreaterThan(0);
    expect(r.handshakeScope).toBe('after fleet up');
    expect(r.blockLimitMs).toBeCloseTo(Math.min(r.handshake.p99, r.handshake.max) + r.roundTripMs, 3);
    expect(summary.events.map((e) => e.label)).toContain('every device renewed');
    expect(summary.timeline.reduce((n, p) => n + (p.renewals ?? 0), 0)).toBe(summary.totals.renewals);
    expect(stdout).toMatch(new RegExp(`renewals ${summary.totals.renewals} \\(in-band ${summary.totals.renewals}, HTTPS 0; path asked: inband\\)`));
    expect(stdout).toMatch(/during the renewals: provisioning \d+\.\d\d CPU-s/);
    expect(html).toContain('<section id="renewals">');
  }, RUN_TIMEOUT_MS);

  it('--renewal-path https: every renewal goes to /v1/renew and the broker relays none', async () => {
    const { code, summary } = await massExpiry('https', ['--renewal-path', 'https']);
    expectRenewalVerdicts(summary, code);
    expect(summary.renewal).toMatchObject({ path: 'https', inBand: 0, https: summary.totals.renewals });
    expect(summary.scenario.verdicts.map((v) => v.name)).not.toContain('renewals over MQTT through the broker');
  }, RUN_TIMEOUT_MS);
});
