import { describe, expect, it } from 'vitest';
import { Backoff } from './backoff.js';
import { DeviceError } from './errors.js';
import { RetryPacer } from './retry-pacer.js';

const network = new DeviceError('network', 'reset');
const refused = new DeviceError('connection_refused', 'ECONNREFUSED', { retryable: true, configuration: true, systemCode: 'ECONNREFUSED' });
const untrusted = new DeviceError('tls_verification_failed', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', { retryable: false, configuration: true });

function pacer(random = () => 0.999) {
  let now = 0;
  const p = new RetryPacer({ backoff: new Backoff({ initialDelayMs: 1000, maxDelayMs: 60_000, random }), random, now: () => now });
  return { p, advance: (ms: number) => (now += ms) };
}

describe('retry pacing after a failed connection attempt', () => {
  it('network trouble waits out the ordinary backoff', () => {
    const { p } = pacer();
    expect([p.next(network), p.next(network), p.next(network)].map((x) => [x.delayMs, x.slow])).toEqual([[999, false], [1998, false], [3996, false]]);
  });

  it('a certificate that does not verify is never retried quickly: 30 s doubling to 5 min, equal jitter', () => {
    const { p } = pacer(() => 0);
    const delays = Array.from({ length: 6 }, () => p.next(untrusted));
    expect(delays.every((d) => d.slow)).toBe(true);
    expect(delays.map((d) => d.delayMs)).toEqual([15_000, 30_000, 60_000, 120_000, 150_000, 150_000]);
  });

  it('a refused port is retried as network trouble at first (a broker restarting), slowly once it lasts 2 minutes', () => {
    const { p, advance } = pacer();
    const early = p.next(refused);
    expect(early).toEqual({ delayMs: 999, slow: false });
    advance(119_000);
    expect(p.next(refused).slow).toBe(false);
    advance(1000);
    const late = p.next(refused);
    expect(late.slow).toBe(true);
    expect(late.delayMs).toBeGreaterThanOrEqual(15_000);
  });

  it('a connection ends the slow pacing: the next refusal is a fresh one', () => {
    const { p, advance } = pacer();
    p.next(refused);
    advance(200_000);
    expect(p.next(refused).slow).toBe(true);
    p.connected();
    expect(p.next(refused).slow).toBe(false);
  });

  it('network trouble between refusals restarts the count of how long refusals last', () => {
    const { p, advance } = pacer();
    p.next(refused);
    advance(100_000);
    p.next(network);
    advance(30_000);
    expect(p.next(refused).slow).toBe(false);
  });
});
