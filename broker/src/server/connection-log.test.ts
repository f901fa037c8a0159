import { describe, expect, it } from 'vitest';
import { LineLimiter } from '@tlsfleet/common';
import { ConnectionLog } from './connection-log.js';

function recorder() {
  const lines: { fields: Record<string, unknown>; msg: string }[] = [];
  return { lines, logger: { info: (fields: Record<string, unknown>, msg: string) => void lines.push({ fields, msg }) } };
}

describe('ConnectionLog', () => {
  it('writes at most the limit of lines per reason in a second, then reports how many it left out', () => {
    const { lines, logger } = recorder();
    let now = 1_000_000;
    const log = new ConnectionLog(logger as never, new LineLimiter(3, () => now));
    for (let i = 0; i < 50; i++) log.refused('tls', 'unknown_ca', { address: `10.0.0.${i}` });
    expect(lines).toHaveLength(3);
    expect(lines.every((l) => l.fields.suppressed === undefined)).toBe(true);
    now += 1000;
    log.refused('tls', 'unknown_ca', { address: '10.0.1.1' });
    expect(lines).toHaveLength(4);
    expect(lines[3]!.fields).toEqual({ address: '10.0.1.1', stage: 'tls', reason: 'unknown_ca', suppressed: 47 });
    log.refused('tls', 'unknown_ca', { address: '10.0.1.2' });
    expect(lines[4]!.fields.suppressed).toBeUndefined();
  });

  it('limits each reason on its own: a flood of one does not hide another', () => {
    const { lines, logger } = recorder();
    const log = new ConnectionLog(logger as never, new LineLimiter(2, () => 0));
    for (let i = 0; i < 20; i++) log.refused('tls', 'no_cert', {});
    log.refused('connect', 'client_id_mismatch', { client: 'a', identity: 'b' });
    log.refused('tls', 'unknown_ca', {});
    expect(lines.map((l) => l.fields.reason)).toEqual(['no_cert', 'no_cert', 'client_id_mismatch', 'unknown_ca']);
    expect(lines[2]).toEqual({ fields: { client: 'a', identity: 'b', stage: 'connect', reason: 'client_id_mismatch' }, msg: 'connection refused' });
  });

  it('keeps the count across a quiet gap and a clock that steps back', () => {
    const { lines, logger } = recorder();
    let now = 5_000;
    const log = new ConnectionLog(logger as never, new LineLimiter(1, () => now));
    log.refused('proxy', 'no_header', {});
    log.refused('proxy', 'no_header', {});
    now = 1_000;
    log.refused('proxy', 'no_header', {});
    expect(lines).toHaveLength(2);
    expect(lines[1]!.fields.suppressed).toBe(1);
  });
});
