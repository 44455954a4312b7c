/**
 * Small pure text helpers shared by the evidence engines and their benchmarks: normalisation,
 * edit distances (character and word error rates), content words, and the fuzzy line match that
 * merges one on-screen line read slightly differently on neighbouring frames.
 */

/** Lower case, punctuation turned into spaces (apostrophes dropped), words split on white space. */
export function normaliseWords(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/['’]/g, '')
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim()
    .split(' ')
    .filter(Boolean);
}

/** The key two readings of a line are compared by: its normalised words joined by one space. */
export function lineKey(text: string): string {
  return normaliseWords(text).join(' ');
}

/** Levenshtein distance between two sequences (strings compare by character, arrays by element). */
export function editDistance<T>(a: ArrayLike<T>, b: ArrayLike<T>): number {
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** Substitutions + deletions + insertions turning the reference words into the hypothesis. */
export function wordErrors(reference: string[], hypothesis: string[]): number {
  return editDistance(reference, hypothesis);
}

/** 1 - distance / longer length, on line keys: 1 for the same reading, 0 for nothing in common. */
export function lineSimilarity(a: string, b: string): number {
  const ka = lineKey(a);
  const kb = lineKey(b);
  const longer = Math.max(ka.length, kb.length);
  return longer === 0 ? 1 : 1 - editDistance(ka, kb) / longer;
}

// Function words that carry no search value on their own (a short list on purpose: numbers,
// names and most verbs stay).
export const STOP_WORDS = new Set(
  (
    'a an and are as at be been but by can could did do does for from had has have he her here his how i if in into ' +
    'is it its just me my no not of on or our out over she so some than that the their them then there these they ' +
    'this those to too up us very was we were what when where which who why will with would you your'
  ).split(' '),
);

/** Words worth indexing alone: 4+ letters, not a stop word, normalised. */
export function contentWords(words: string[]): string[] {
  return words.flatMap(normaliseWords).filter((w) => w.length >= 4 && !STOP_WORDS.has(w));
}
