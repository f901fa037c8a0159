import { describe, expect, it } from 'vitest';
import { didYouMean, editDistance } from './did-you-mean.js';

describe('editDistance', () => {
  it.each([
    ['', '', 0],
    ['port', 'port', 0],
    ['prot', 'port', 2],
    ['max-conections', 'max-connections', 1],
    ['kitten', 'sitting', 3],
    ['', 'abc', 3],
  ])('is %j → %j: %i', (a, b, d) => {
    expect(editDistance(a, b)).toBe(d);
    expect(editDistance(b, a)).toBe(d);
  });
});

describe('didYouMean', () => {
  const flags = ['port', 'health-port', 'max-connections', 'max-connections-per-address', 'trusted-proxy'];
  it.each([
    ['max-conections', 'max-connections'],
    ['helth-port', 'health-port'],
    ['trusted-proxies', 'trusted-proxy'],
    ['max-con', 'max-connections'],
    ['prot', 'port'],
  ])('suggests %j for %j', (typed, meant) => {
    expect(didYouMean(typed, flags)).toBe(meant);
  });

  it('suggests nothing when no name is close', () => {
    expect(didYouMean('bogus', flags)).toBeUndefined();
    expect(didYouMean('x', flags)).toBeUndefined();
  });
});
