// Text layout of the device benchmark: each figure beside its reference from the same
// run, and its target with whether it was met.

/** A target either on the figure itself ('at most value') or on figure / reference ('at most ratio ×'). */
export type Target = { kind: 'at-most'; value: number; unit: string } | { kind: 'ratio-at-most'; ratio: number };

export interface Figure {
  name: string;
  value: number;
  /** Undefined when this row is the reference itself. */
  reference?: number;
  target?: Target;
}

const NAME_WIDTH = 52;
const CELL_WIDTH = 12;

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function met(figure: Figure): boolean | undefined {
  const { target, value, reference } = figure;
  if (target === undefined) return undefined;
  if (target.kind === 'at-most') return value <= target.value;
  return reference === undefined || reference === 0 ? undefined : value / reference <= target.ratio;
}

/** One table: its title, a header with the unit, then a row per figure (value, reference, ratio, target, verdict). */
export function table(title: string, unit: string, figures: readonly Figure[], format: (n: number) => string): string {
  const head = `${title}\n${''.padEnd(NAME_WIDTH)}${[unit, 'reference', 'ratio'].map((c) => c.padStart(CELL_WIDTH)).join('')}  target`;
  const rows = figures.map((f) => {
    const ratio = f.reference === undefined || f.reference === 0 ? '—' : `${(f.value / f.reference).toFixed(2)}×`;
    const cells = [format(f.value), f.reference === undefined ? '—' : format(f.reference), ratio];
    const verdict = f.target === undefined ? '' : `${targetText(f.target, format)}: ${met(f) === false ? 'NOT met' : met(f) ? 'met' : 'not measured'}`;
    return `${('  ' + f.name).padEnd(NAME_WIDTH)}${cells.map((c) => c.padStart(CELL_WIDTH)).join('')}  ${verdict}`;
  });
  return [head, ...rows].join('\n');
}

function targetText(target: Target, format: (n: number) => string): string {
  return target.kind === 'at-most' ? `≤ ${format(target.value)} ${target.unit}` : `≤ ${target.ratio}× reference`;
}

export const fixed = (digits: number) => (n: number) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
