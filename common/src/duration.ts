const UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400 };

/** Parses `90`, `30s`, `10m`, `24h`, `7d` (whole numbers) into seconds; undefined if malformed. */
export function parseDurationSeconds(text: string): number | undefined {
  const m = /^(\d{1,9})(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) return undefined;
  const seconds = Number(m[1]) * (UNITS[m[2] ?? 's'] as number);
  return Number.isInteger(seconds) ? seconds : undefined;
}
