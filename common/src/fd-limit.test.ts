import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { connectionCapBelow, readFdLimit } from './fd-limit.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 524288               files
Max locked memory         8388608              8388608              bytes
`;

describe('readFdLimit', () => {
  it('reads the soft and hard open-file limits from /proc/self/limits text', () => {
    expect(readFdLimit(LIMITS)).toEqual({ soft: 1024, hard: 524288 });
  });

  it('reads unlimited as Infinity', () => {
    expect(readFdLimit(LIMITS.replace('1024                 524288', 'unlimited            unlimited'))).toEqual({ soft: Infinity, hard: Infinity });
  });

  it('is undefined when the line is missing or garbled', () => {
    expect(readFdLimit('Limit Soft Hard\n')).toBeUndefined();
    expect(readFdLimit('Max open files            lots                 524288               files\n')).toBeUndefined();
  });

  it('reads this process\'s own limit on Linux', () => {
    const limit = readFdLimit();
    expect(limit).toBeDefined();
    expect(limit!.soft).toBeGreaterThan(0);
    expect(limit!.hard).toBeGreaterThanOrEqual(limit!.soft);
  });
});

describe('connectionCapBelow', () => {
  it('keeps 10 % of the soft limit (at least 64) for files the server itself needs', () => {
    expect(connectionCapBelow({ soft: 20_000, hard: 20_000 }, 100_000)).toBe(18_000);
    expect(connectionCapBelow({ soft: 256, hard: 4096 }, 100_000)).toBe(192);
  });

  it('never exceeds the configured cap, and never drops below one', () => {
    expect(connectionCapBelow({ soft: 1_000_000, hard: 1_000_000 }, 5_000)).toBe(5_000);
    expect(connectionCapBelow({ soft: 10, hard: 10 }, 5_000)).toBe(1);
  });

  it('falls back to the configured cap when the limit is unknown or unlimited', () => {
    expect(connectionCapBelow(undefined, 7)).toBe(7);
    expect(connectionCapBelow({ soft: Infinity, hard: Infinity }, 7)).toBe(7);
  });
});

describe('raiseFdLimit', () => {
  it('raises a lowered soft limit back to the hard limit in a real child process', async () => {
    // Node itself raises the soft limit at start, so the child lowers its own first.
    // npm test builds dist/ before vitest runs; the child loads the built module.
    const module = new URL('../dist/fd-limit.js', import.meta.url).pathname;
    const script = `
      import { execFileSync } from 'node:child_process';
      const m = await import(${JSON.stringify(module)});
      const hard = m.readFdLimit().hard;
      execFileSync('prlimit', ['--pid', String(process.pid), '--nofile=256:' + hard]);
      const before = m.readFdLimit();
      const after = m.raiseFdLimit();
      console.log(JSON.stringify({ before, after }));`;
    const hard = readFdLimit()!.hard;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const [code] = (await once(child, 'exit')) as [number];
    expect(code).toBe(0);
    const { before, after } = JSON.parse(out) as { before: { soft: number; hard: number }; after: { soft: number; hard: number } };
    expect(before.soft).toBe(256);
    expect(after.soft).toBe(hard);
    expect(after.hard).toBe(hard);
  });
});
