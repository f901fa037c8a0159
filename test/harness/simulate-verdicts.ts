import { expect } from 'vitest';
import type { FleetSummary } from '@tlsfleet/simulators';

export const SWAP_WAIT = 'longest publish → PUBACK during a certificate swap';

/** The verdicts that failed, the error tally and the renewal figures: what a failed run needs to be read. */
export function failedVerdicts(s: FleetSummary): string {
  const misses = s.scenario.verdicts.filter((v) => !v.pass).map((v) => `${v.name}: ${v.measured} (limit ${v.limit})`).join('; ');
  return `${misses}; errors ${JSON.stringify(s.errors)}; renewal ${JSON.stringify(s.renewal)}`;
}

/**
 * Every verdict passes but the swap wait's, which compares one sample (the longest wait) with
 * a limit from a few dozen handshakes: on a shared 2-core host a scheduling hiccup decides it,
 * so here it must be measured and the exit code must follow it; the benchmark states it at scale.
 */
export function expectRenewalVerdicts(s: FleetSummary, code: number | null): void {
  const others = s.scenario.verdicts.filter((v) => v.name !== SWAP_WAIT);
  expect(others.every((v) => v.pass), failedVerdicts(s)).toBe(true);
  const swap = s.scenario.verdicts.find((v) => v.name === SWAP_WAIT);
  expect(swap?.measured).toMatch(/^max \d+ ms, p99 \d+ ms over \d+ publishes$/);
  expect(swap?.pass).toBe(s.renewal!.swapPublishWait.max <= s.renewal!.blockLimitMs);
  expect(code).toBe(s.scenario.pass ? 0 : 1);
}
