// Text layout of the broker benchmark's report: one row per figure, ours beside the
// reference, the ratio, and the target with whether it was reached.

export interface Target {
  /** 'min': the ratio must be at least `ratio`; 'max': at most. */
  readonly kind: 'min' | 'max';
  readonly ratio: number;
}

export interface Verdict {
  readonly name: string;
  readonly target: Target;
  /** Undefined when the reference was not measured, or the run could not judge it. */
  readonly ratio: number | undefined;
  /** Why the ratio is undefined, when it is not 'not measured'. */
  readonly unjudged?: string;
}

const NAME_WIDTH = 50;
const COLUMN_WIDTH = 13;

export function header(columns: readonly string[]): string {
  return `${''.padEnd(NAME_WIDTH)}${columns.map((c) => c.padStart(COLUMN_WIDTH)).join('')}`;
}

/** A row: the figure's name, ours, the reference (or "—"), the ratio ours/reference, the target and its verdict. */
export function row(name: string, ours: number, reference: number | undefined, unit: string, target?: Target, digits = 0): string {
  const ratio = reference === undefined || !Number.isFinite(reference) || reference === 0 ? undefined : ours / reference;
  const cells = [num(ours, digits), reference === undefined ? '—' : num(reference, digits), ratio === undefined ? '—' : `${ratio.toFixed(2)}×`];
  const verdict = target ? `  ${unit}; target ${targetText(target)}: ${verdictText(ratio, target)}` : `  ${unit}`;
  return `${name.padEnd(NAME_WIDTH)}${cells.map((c) => c.padStart(COLUMN_WIDTH)).join('')}${verdict}`;
}

export function reached(ratio: number | undefined, target: Target): boolean | undefined {
  if (ratio === undefined) return undefined;
  return target.kind === 'min' ? ratio >= target.ratio : ratio <= target.ratio;
}

export function targetText(target: Target): string {
  return `${target.kind === 'min' ? '≥' : '≤'} ${target.ratio}×`;
}

export function verdictText(ratio: number | undefined, target: Target, unjudged = 'not measured'): string {
  const r = reached(ratio, target);
  return r === undefined ? unjudged : r ? 'reached' : 'NOT reached';
}

export function num(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return 'n/a';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function kib(bytes: number): string {
  return `${num(bytes / 1024, 1)} KiB`;
}

export function mib(bytes: number): string {
  return `${num(bytes / 1024 / 1024, 1)} MiB`;
}

const started = performance.now();

/** One line per phase on stderr, seconds since the run started, so a long or interrupted run shows how far it got. */
export function progress(phase: string): void {
  process.stderr.write(`bench:broker ${Math.round((performance.now() - started) / 1000)} s: ${phase}\n`);
}

/** Ratios as the report prints them: `1.05×, 0.98×`. */
export function times(ratios: readonly number[]): string {
  return ratios.map((x) => `${x.toFixed(2)}×`).join(', ');
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
