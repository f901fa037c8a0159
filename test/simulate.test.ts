import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { FleetSummary } from '@tlsfleet/simulators';
import { runCli } from './harness/cli.js';
import { tempDir } from './harness/temp-dir.js';
import { expectRenewalVerdicts } from './harness/simulate-verdicts.js';
import { chartIn, dumpDom } from '../simulators/src/report/chromium.fixture.js';

const tmp = tempDir('tlsfleet-sim-e2e-');
afterAll(() => tmp.cleanup());

/** A small fleet through one scenario, with the simulator starting its own provisioning and broker. */
async function simulate(scenario: string, extra: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string; summary: FleetSummary; reportDir: string }> {
  const reportDir = join(tmp.path, scenario);
  const r = await runCli(['simulate', '--devices', '50', '--ramp', '50', '--publish-interval', '1s', '--duration', '20s', '--workers', '2', '--scenario', scenario, '--report', reportDir, ...extra]);
  if (!existsSync(join(reportDir, 'summary.json'))) throw new Error(`no summary (exit ${r.code}):\n${r.stderr}`);
  return { ...r, summary: JSON.parse(readFileSync(join(reportDir, 'summary.json'), 'utf8')) as FleetSummary, reportDir };
}

function failed(s: FleetSummary): string {
  // The error counts and the last seconds of the timeline say what the fleet was doing.
  const misses = s.scenario.verdicts.filter((v) => !v.pass).map((v) => `${v.name}: ${v.measured} (limit ${v.limit})`).join('; ');
  return `${misses}; errors ${JSON.stringify(s.errors)}; timeline tail ${JSON.stringify(s.timeline.slice(-5))}`;
}

describe('tlsfleet simulate', () => {
  it('refuses a run without --devices, and a bad scenario, with usage (exit 2)', async () => {
    const a = await runCli(['simulate']);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/--devices is required/);
    const b = await runCli(['simulate', '--devices', '5', '--scenario', 'chaos']);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/--scenario must be one of steady, reconnect-storm, renewal-storm, revocation/);
  });

  it('steady: 50 mTLS devices publish QoS 1 for 20 s with nothing lost, and the report is written', async () => {
    const { code, stdout, summary, reportDir } = await simulate('steady');
    expect(summary.scenario.pass, failed(summary)).toBe(true);
    expect(code).toBe(0);
    expect(stdout).toMatch(/scenario steady: PASS/);
    expect(summary.totals).toMatchObject({ enrolled: 50, connectedPeak: 50, lost: 0 });
    expect(summary.totals.acked).toBeGreaterThan(50 * 15);
    expect(summary.totals.received).toBe(summary.totals.acked);
    expect(summary.latency.endToEnd.count).toBe(summary.totals.received);
    expect(summary.timeline.length).toBeGreaterThan(15);
    // The real run's report, drawn by headless chromium: every chart with data drew it.
    const dom = await dumpDom(join(reportDir, 'report.html'), join(reportDir, 'chromium-profile'));
    for (const chart of ['connected', 'message-rate', 'latency', 'enrollment-latency', 'connect-latency']) {
      const { attributes } = chartIn(dom, chart);
      expect(attributes['data-drawn'], chart).toBe('true');
      expect(Number(attributes['data-points']), chart).toBeGreaterThan(0);
    }
  });

  it('reconnect-storm: the broker restarts mid-run, 99% are back in time, no QoS 1 message lost', async () => {
    const { code, stdout, stderr, summary } = await simulate('reconnect-storm');
    expect(summary.scenario.pass, failed(summary)).toBe(true);
    expect(code).toBe(0);
    // The restart's dropped links and refused ports are said to be expected, apart from the errors.
    const reason = 'reconnecting: broker restarted (expected in this scenario)';
    expect(summary.expectedErrors?.reason).toBe(reason);
    expect(Object.values(summary.expectedErrors?.counts ?? {}).reduce((a, b) => a + b, 0), JSON.stringify(summary.errors)).toBeGreaterThan(0);
    expect(Object.keys(summary.errors)).not.toContain('connection_refused');
    expect(stdout).toContain(`${reason}: `);
    // What received and sent count, once, before the first progress line.
    expect(stderr).toMatch(/received may lead sent by the last 250 ms of traffic/);
    expect(summary.events.map((e) => e.label)).toEqual(['fleet up', 'broker restart', 'broker back']);
    expect(summary.scenario.verdicts.find((v) => v.name.startsWith('time until 99%'))?.pass).toBe(true);
  });

  it('renewal-storm: every device renews its 20 s certificate during the run and none drops out', async () => {
    const { code, summary } = await simulate('renewal-storm', ['--cert-ttl', '20s']);
    expectRenewalVerdicts(summary, code);
    expect(summary.totals.renewals).toBeGreaterThanOrEqual(50);
    expect(summary.totals.renewalFailures).toBe(0);
  });

  it('revocation: 10% revoked mid-run are cut off within 10 s and stay out', async () => {
    const { code, summary } = await simulate('revocation');
    expect(summary.scenario.pass, failed(summary)).toBe(true);
    expect(code).toBe(0);
    expect(summary.events.map((e) => e.label)).toEqual(['fleet up', 'revoked 5 devices']);
    expect(summary.scenario.verdicts.find((v) => v.name === 'revoked devices let back in')?.measured).toBe('0');
  });
});
