/** Milliseconds per unit; a bare number is seconds. */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, y: 365 * 86_400_000 };
// y is 365 days: for CA lifetimes (`ca new-root --lifetime 10y`), where a leap day does not matter.

/** Parses `500ms`, `90`, `30s`, `10m`, `24h`, `7d`, `10y` (whole numbers) into milliseconds; undefined if malformed. */
export function parseDurationMs(text: string): number | undefined {
  const m = /^(\d{1,9})(ms|s|m|h|d|y)?$/.exec(text.trim());
  if (!m) return undefined;
  return Number(m[1]) * (UNIT_MS[m[2] ?? 's'] as number);
}

/** Parses `90`, `30s`, `10m`, `24h`, `7d` (whole numbers) into seconds; undefined if malformed or not whole seconds. */
export function parseDurationSeconds(text: string): number | undefined {
  const ms = parseDurationMs(text);
  return ms !== undefined && ms % 1000 === 0 ? ms / 1000 : undefined;
}
