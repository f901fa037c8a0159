import { describe, expect, it } from 'vitest';
import { parseDurationMs, parseDurationSeconds } from './duration.js';

describe('parseDurationSeconds', () => {
  it.each([
    ['90', 90],
    ['30s', 30],
    ['10m', 600],
    ['24h', 86_400],
    ['7d', 604_800],
    ['2000ms', 2],
    ['10y', 10 * 365 * 86_400],
  ])('reads %s as %i seconds', (text, seconds) => {
    expect(parseDurationSeconds(text)).toBe(seconds);
  });

  it.each(['', '10x', '-5s', '1.5h', 'm', '10 m s', '1500ms'])('refuses %j', (text) => {
    expect(parseDurationSeconds(text)).toBeUndefined();
  });
});

describe('parseDurationMs', () => {
  it.each([
    ['500ms', 500],
    ['1500ms', 1500],
    ['90', 90_000],
    ['30s', 30_000],
    ['2m', 120_000],
  ])('reads %s as %i ms', (text, ms) => {
    expect(parseDurationMs(text)).toBe(ms);
  });

  it.each(['', '10x', '-5ms', '1.5s', 'ms'])('refuses %j', (text) => {
    expect(parseDurationMs(text)).toBeUndefined();
  });
});
