import { describe, expect, it } from 'vitest';
import type { FleetSummary, RenewalFigures } from './fleet-summary.js';
import { renderReport } from './render-report.js';
import { sampleSummary } from './sample-summary.fixture.js';

const p = (max: number) => ({ count: 100, p50: max / 4, p90: max / 2, p99: max * 0.9, p999: max, max });

function renewals(overrides: Partial<RenewalFigures> = {}): FleetSummary {
  const summary = sampleSummary();
  summary.renewal = {
    path: 'inband',
    devicesRenewed: 2000,
    inBand: 1990,
    https: 10,
    unknownRoute: 0,
    routesFrom: 'broker',
    firstAt: 61.2,
    lastAt: 118.9,
    peakPerSecond: 83,
    meanPerSecond: 34.7,
    provisioningCpuSeconds: 12.5,
    provisioningCpuMsPerRenewal: 6.25,
    brokerCpuSeconds: 9,
    brokerCpuMsPerRenewal: 4.5,
    publishWait: p(400),
    swapPublishWait: p(120),
    calmPublishWait: p(60),
    roundTripMs: 54,
    handshake: p(300),
    handshakeScope: 'after fleet up',
    blockLimitMs: 370,
    ...overrides,
  };
  return summary;
}

/** The text of the report's Renewals section, tags stripped. */
function section(page: string): string | undefined {
  const m = /<section id="renewals">([\s\S]*?)<\/section>/.exec(page);
  return m?.[1]!.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
}

describe('report.html renewals section', () => {
  it('shows the routes, the rate, the services\' CPU and the swap waits against the limit', () => {
    const text = section(renderReport(renewals()));
    expect(text).toBeDefined();
    for (const shown of ['renewed in-band (MQTT) 1,990', 'renewed over HTTPS 10', '61.2 s → 118.9 s', 'peak 83/s', 'mean 34.7/s', 'provisioning CPU during renewals 12.50 CPU-s', 'swap wait limit 370']) {
      expect(text).toContain(shown);
    }
  });

  it('marks HTTPS fallbacks under the in-band path and a swap wait over the limit as bad', () => {
    const page = renderReport(renewals({ swapPublishWait: p(900) }));
    const bad = [...page.matchAll(/<div class="figure bad"><dt>([^<]+)<\/dt>/g)].map((m) => m[1]);
    expect(bad).toEqual(expect.arrayContaining(['renewed in-band (MQTT)', 'during swaps p99 / max']));
    const good = renderReport(renewals({ inBand: 2000, https: 0 }));
    expect([...good.matchAll(/<div class="figure bad"><dt>([^<]+)<\/dt>/g)].map((m) => m[1])).not.toContain('renewed in-band (MQTT)');
  });

  it('is absent from a run without renewal figures', () => {
    expect(section(renderReport(sampleSummary()))).toBeUndefined();
  });
});
