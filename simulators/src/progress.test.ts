import { describe, expect, it } from 'vitest';
import { progressLine, type ProgressFigures } from './progress.js';

const base: ProgressFigures = { enrolled: 10, connected: 10, sent: 100, received: 100, duplicated: 0, errors: 0, expected: 0 };

describe('progress line', () => {
  it('says why received is ahead of sent when it is', () => {
    expect(progressLine({ ...base, received: 104 }, 10)).toMatch(/received 104 \(received leads: sends are reported every 250 ms\)/);
    expect(progressLine(base, 10)).not.toMatch(/leads/);
  });

  it('shows errors a planned broker restart explains apart from errors, with the reason', () => {
    const line = progressLine({ ...base, errors: 1, expected: 37, expectedReason: 'reconnecting: broker restarted (expected in this scenario)' }, 10);
    expect(line).toMatch(/errors 1 reconnecting: broker restarted \(expected in this scenario\) 37$/);
  });

  it('counts duplicates apart', () => {
    expect(progressLine({ ...base, duplicated: 3 }, 10)).toMatch(/duplicates 3/);
  });
});
