import { describe, expect, it } from 'vitest';
import { formatBytes, formatCount, formatDuration, formatMs } from './report-format.js';

const formats = { formatBytes, formatCount, formatDuration, formatMs };

describe('report figures for people', () => {
  it.each<[keyof typeof formats, number, string]>([
    ['formatCount', 12345, '12,345'],
    ['formatCount', Number.NaN, '—'],
    ['formatMs', 0.4213, '0.42 ms'],
    ['formatMs', 7.46, '7.46 ms'],
    ['formatMs', 182.4, '182 ms'],
    ['formatMs', 3240, '3.24 s'],
    ['formatMs', Number.POSITIVE_INFINITY, '—'],
    ['formatDuration', 10_000, '10 s'],
    ['formatDuration', 300_000, '5 min'],
    ['formatDuration', 604_800_000, '7 d'],
    ['formatDuration', 1500, '1.5 s'],
    ['formatBytes', 512, '512 B'],
    ['formatBytes', 155_189, '152 KiB'],
    ['formatBytes', 148 * 1024 * 1024, '148 MiB'],
  ])('%s(%d) is %s', (format, value, text) => {
    expect(formats[format](value)).toBe(text);
  });

  it('shows a value read back from JSON as null as not measured', () => {
    expect(formatMs(null)).toBe('—');
  });
});
