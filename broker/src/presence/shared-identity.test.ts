import { afterEach, describe, expect, it } from 'vitest';
import { SharedIdentityWatch } from './shared-identity.js';

describe('SharedIdentityWatch', () => {
  let clock = 0;
  const found: { id: string; address: string; previousAddress: string }[] = [];
  let watch: SharedIdentityWatch | undefined;
  const make = () => (watch = new SharedIdentityWatch(() => clock, (f) => found.push(f), 60_000, 3_600_000));
  afterEach(() => {
    watch?.close();
    found.length = 0;
    clock = 0;
  });

  it('flags a session from another address within the window, and not one from the same address', () => {
    const w = make();
    w.sessionStarted('d1', '10.0.0.1');
    w.sessionEnded('d1', '10.0.0.1');
    clock += 5_000;
    w.sessionStarted('d1', '10.0.0.1');
    expect(found).toEqual([]);
    w.sessionEnded('d1', '10.0.0.1');
    clock += 59_000;
    w.sessionStarted('d1', '10.0.0.2');
    expect(found).toEqual([{ id: 'd1', address: '10.0.0.2', previousAddress: '10.0.0.1' }]);
    expect(w.sharedCount()).toBe(1);
  });

  it('does not flag a device back from another network after the window, and forgets a finding after an hour', () => {
    const w = make();
    w.sessionEnded('d2', '10.0.0.1');
    clock += 60_001;
    w.sessionStarted('d2', '10.0.0.9');
    expect(found).toEqual([]);
    w.sessionEnded('d2', '10.0.0.9');
    w.sessionStarted('d2', '10.0.0.1');
    expect(w.sharedCount()).toBe(1);
    clock += 3_600_001;
    expect(w.sharedCount()).toBe(0);
  });

  it('ignores sessions whose address is unknown', () => {
    const w = make();
    w.sessionEnded('d3', undefined);
    w.sessionStarted('d3', '10.0.0.1');
    w.sessionEnded('d3', '10.0.0.1');
    w.sessionStarted('d3', undefined);
    expect(found).toEqual([]);
  });
});
