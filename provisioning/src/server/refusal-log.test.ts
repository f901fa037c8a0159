import { describe, expect, it } from 'vitest';
import { RefusalLog } from './refusal-log.js';

describe('RefusalLog', () => {
  it('writes one line per reason per interval, and the next line says how many it left out', () => {
    let now = 0;
    const lines: Array<[Record<string, unknown>, string]> = [];
    const log = new RefusalLog({ warn: ((fields: Record<string, unknown>, msg: string) => lines.push([fields, msg])) as never }, 1000, () => now);
    for (let i = 0; i < 50; i++) log.note('max_connections', 'refused');
    log.note('handshake_timeout', 'timed out');
    expect(lines.map(([f]) => [f.reason, f.suppressedSinceLast])).toEqual([
      ['max_connections', 0],
      ['handshake_timeout', 0],
    ]);
    now = 1000;
    log.note('max_connections', 'refused', { maxConnections: 5 });
    expect(lines[2]).toEqual([{ reason: 'max_connections', maxConnections: 5, suppressedSinceLast: 49 }, 'refused']);
  });
});
