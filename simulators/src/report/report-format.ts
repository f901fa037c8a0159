// How the report writes numbers for people. A figure a run could not measure (NaN,
// Infinity, or null read back from JSON) shows as a dash rather than "NaN ms".

const NOT_MEASURED = '—';
const counts = new Intl.NumberFormat('en-US');

const measured = (n: number | null | undefined): n is number => typeof n === 'number' && Number.isFinite(n);

/** 12345 → "12,345". */
export function formatCount(n: number | null | undefined): string {
  return measured(n) ? counts.format(n) : NOT_MEASURED;
}

/** A latency or CPU time: "0.42 ms", "7.5 ms", "182 ms", "3.2 s". */
export function formatMs(ms: number | null | undefined): string {
  if (!measured(ms)) return NOT_MEASURED;
  if (ms >= 1000) return `${round(ms / 1000)} s`;
  return `${round(ms)} ms`;
}

/** A length of time in its largest whole-ish unit: "500 ms", "60 s", "5 min", "2 h", "7 d". */
export function formatDuration(ms: number | null | undefined): string {
  if (!measured(ms)) return NOT_MEASURED;
  const units: [string, number][] = [['d', 86_400_000], ['h', 3_600_000], ['min', 60_000], ['s', 1000]];
  for (const [unit, size] of units) {
    if (ms >= size && ms % size === 0) return `${ms / size} ${unit}`;
  }
  return formatMs(ms);
}

/** Binary units, as RSS is usually read: "512 B", "38.5 KiB", "1.2 GiB". */
export function formatBytes(bytes: number | null | undefined): string {
  if (!measured(bytes)) return NOT_MEASURED;
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : round(value)} ${units[unit]}`;
}

/** Three significant digits, at most two decimals: 0.4213 → 0.42, 7.46 → 7.46, 182.4 → 182. */
function round(n: number): number {
  const digits = Math.abs(n) >= 100 ? 0 : Math.abs(n) >= 10 ? 1 : 2;
  return Number(n.toFixed(digits));
}
