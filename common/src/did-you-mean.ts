/** Levenshtein distance (insert, delete, substitute; each costs 1). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length] as number;
}

/**
 * The candidate a mistyped name most likely meant: one it is a prefix of, else the nearest
 * within a third of its length (at least 2 edits); undefined when nothing is close.
 */
export function didYouMean(typed: string, candidates: Iterable<string>): string | undefined {
  const all = [...candidates];
  const prefixed = all.filter((c) => typed.length >= 3 && c.startsWith(typed));
  if (prefixed.length > 0) return prefixed.sort((a, b) => a.length - b.length)[0];
  const limit = Math.max(2, Math.floor(typed.length / 3));
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const c of all) {
    const d = editDistance(typed, c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}
