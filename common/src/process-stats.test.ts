import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { machineStealSeconds } from './process-stats.js';

describe('machineStealSeconds', () => {
  it('reads the steal column of /proc/stat, in seconds', () => {
    const before = machineStealSeconds();
    // awk numbers the fields from 1, with "cpu" as $1: steal is $9.
    const ticks = Number(execFileSync('awk', ['/^cpu /{print $9}', '/proc/stat'], { encoding: 'utf8' }).trim());
    const after = machineStealSeconds();
    expect(Number.isFinite(before)).toBe(true);
    expect(before).toBeLessThanOrEqual(ticks / 100);
    expect(ticks / 100).toBeLessThanOrEqual(after);
  });
});
