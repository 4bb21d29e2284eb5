// Near-miss suggestions for unknown config keys and CLI flags.

/**
 * The known names `key` is a near miss of (at most 3): a typo, a swapped pair, or a name with a word left out
 * (`--produce-rate` for `--produce-bytes-rate`, which an edit distance alone would call too far).
 */
export function nearMisses(key: string, known: readonly string[]): string[] {
  const words = (k: string) =>
    k
      .toLowerCase()
      .split(/[-_]/)
      .filter((w) => w !== '');
  const near = known.filter((k) => {
    if (distance(key.toLowerCase(), k.toLowerCase()) <= Math.max(1, Math.floor(k.length / 4))) return true;
    const mine = words(key);
    const theirs = words(k);
    return mine.length > 1 && mine.every((w) => theirs.includes(w));
  });
  return near.slice(0, 3);
}

/** Damerau-Levenshtein distance (optimal string alignment): a swapped pair of letters counts as one edit. */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}
