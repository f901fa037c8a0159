import { describe, expect, it } from 'vitest';
import type { ShardReport } from './fleet-shard.js';
import { RenewalTracker } from './renewal-figures.js';

function report(part: Partial<ShardReport>): ShardReport {
  return { type: 'report', sent: 0, acked: 0, connected: 0, enrolled: 0, reused: 0, enrollFailed: 0, enrollMs: [], connectMs: [], renewals: 0, renewalEvents: [], publishWaitMs: [], swapPublishWaitMs: [], handshakes: [], errors: {}, transitions: [], ...part };
}

const T0 = 1_000_000;

describe('renewal figures', () => {
  it('gives the peak per second and the mean from the first renewal to the last', () => {
    const t = new RenewalTracker();
    // 3 in the second starting at T0+10 s, 1 at T0+14 s: peak 3/s, mean 4 over 4 s.
    t.absorb(report({ renewalEvents: [10_000, 10_100, 10_900, 14_000].map((ms, index) => ({ index, at: T0 + ms, route: 'inband' as const })) }));
    const f = t.figures('inband', T0, undefined);
    expect(f).toMatchObject({ inBand: 4, https: 0, unknownRoute: 0, routesFrom: 'devices', firstAt: 10, lastAt: 14, peakPerSecond: 3, meanPerSecond: 1 });
  });

  it('splits renewals whose route the devices did not say by what the broker relayed, never more than there were', () => {
    const t = new RenewalTracker();
    t.absorb(report({ renewalEvents: Array.from({ length: 5 }, (_, i) => ({ index: i % 2, at: T0 + i * 1000, route: 'unknown' as const })) }));
    expect(t.devicesRenewed).toBe(2);
    expect(t.figures('inband', T0, undefined, 3)).toMatchObject({ devicesRenewed: 2, inBand: 3, https: 2, unknownRoute: 0, routesFrom: 'broker' });
    expect(t.figures('inband', T0, undefined, 9)).toMatchObject({ inBand: 5, https: 0 });
    expect(t.figures('inband', T0, undefined)).toMatchObject({ inBand: 0, https: 0, unknownRoute: 5, routesFrom: 'devices' });
  });

  it('takes the swap limit from the handshakes after the fleet was up, plus the p99 publish wait away from swaps', () => {
    const t = new RenewalTracker();
    t.absorb(report({ handshakes: [{ at: T0, ms: 5000 }, { at: T0 + 20_000, ms: 200 }], publishWaitMs: [10, 10, 30], swapPublishWaitMs: [150] }));
    const up = t.figures('inband', T0, T0 + 10_000);
    expect(up.handshakeScope).toBe('after fleet up');
    expect(up.roundTripMs).toBeCloseTo(30, 0);
    expect(up.blockLimitMs).toBeCloseTo(230, 0);
    expect(up.swapPublishWait).toMatchObject({ count: 1 });
    expect(up.calmPublishWait).toMatchObject({ count: 3 });
    expect(up.publishWait).toMatchObject({ count: 4 });
    expect(t.figures('inband', T0, undefined).handshake.max).toBeCloseTo(5000, 0);
  });
});
