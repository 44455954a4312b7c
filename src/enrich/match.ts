/**
 * Evidence as search sees it: the words an item's evidence can be found by (`evidenceTerms`, stored in the
 * payload's `terms` and filtered on with `termsAny`), and how well a text query matches each piece of evidence
 * (`matchEvidence`), so a hit says why it matched.
 *
 * - On-screen text matches by its words: the share of the query's words read in the line, exactly (after
 *   normalisation: lower case, no punctuation). "flood" finds "BREAKING NEWS: river floods city" only if the
 *   reading has "flood"; a misread word is not found.
 * - An object matches by its class name (1) or by a word near it in GloVe word vectors (`object-words.json`,
 *   written by `python3 -m montage_encoders.objectwords`): "puppy" finds a dog at 0.72, its cosine similarity.
 *   Those neighbours are associations, not synonyms ("pet" and "pig" sit near "dog" too), which is why a related
 *   word counts its similarity and the class's own name counts 1.
 */
import { readFileSync } from 'node:fs';
import type { StoredEvidence } from '../store/types.ts';
import { normaliseWords, STOP_WORDS } from './text.ts';
import type { Evidence } from './types.ts';

interface ObjectWordsFile {
  classes: Record<string, [string, number][]>;
}

const OBJECT_WORDS = (JSON.parse(readFileSync(new URL('./object-words.json', import.meta.url), 'utf8')) as ObjectWordsFile).classes;

/** An evidence item with how well it matched the query (0..1) and the query words it matched by. */
export interface MatchedEvidence extends StoredEvidence {
  match: number;
  words: string[];
}

/** The store's copy of an evidence item: times to the millisecond, confidence to 3 places. */
export function toStored(e: Evidence): StoredEvidence {
  const r = (x: number, p: number) => Math.round(x * p) / p;
  return { kind: e.kind, text: e.text, startS: r(e.startS, 1000), endS: r(e.endS, 1000), confidence: r(e.confidence, 1000) };
}

/** The words of an object class name ("traffic light" → traffic, light). */
function classWords(label: string): string[] {
  return normaliseWords(label);
}

/** Related words of a COCO class and their similarity to it (the class's own words are 1). */
export function objectWords(label: string): Map<string, number> {
  const out = new Map<string, number>(classWords(label).map((w) => [w, 1]));
  for (const [w, s] of OBJECT_WORDS[label] ?? []) if (!out.has(w)) out.set(w, s);
  return out;
}

/** The query's words that can match evidence: normalised, stop words out. */
export function queryWords(text: string): string[] {
  return [...new Set(normaliseWords(text).filter((w) => !STOP_WORDS.has(w)))];
}

/** A word and its singular by the plain English rules ("kites" → kite, "boxes" → box), so plurals match either way. */
export function wordForms(w: string): string[] {
  const out = [w];
  if (w.length > 3 && w.endsWith('s') && !w.endsWith('ss')) out.push(w.slice(0, -1));
  if (w.length > 4 && /(xes|ches|shes|sses)$/.test(w)) out.push(w.slice(0, -2));
  if (w.length > 4 && w.endsWith('ies')) out.push(`${w.slice(0, -3)}y`);
  return out;
}

/** Every form of the query's words, for the store's `termsAny` filter. */
export function queryTerms(words: readonly string[]): string[] {
  return [...new Set(words.flatMap(wordForms))];
}

/** Every word the evidence can be found by, sorted and unique: OCR words, object class words and their neighbours. */
export function evidenceTerms(evidence: readonly StoredEvidence[]): string[] {
  const terms = new Set<string>();
  for (const e of evidence) {
    if (e.kind === 'object') for (const w of objectWords(e.text).keys()) terms.add(w);
    else for (const w of normaliseWords(e.text)) for (const f of wordForms(w)) terms.add(f);
  }
  return [...terms].sort();
}

/** Per query word, how well one evidence item has it (0..1; absent when not at all). */
function wordMatches(e: StoredEvidence, words: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  if (e.kind === 'object') {
    const related = objectWords(e.text);
    for (const w of words) {
      const s = Math.max(...wordForms(w).map((f) => related.get(f) ?? 0));
      if (s > 0) out.set(w, s);
    }
    return out;
  }
  const read = new Set(normaliseWords(e.text).flatMap(wordForms));
  for (const w of words) if (wordForms(w).some((f) => read.has(f))) out.set(w, 1);
  return out;
}

/**
 * The evidence that matches the query, best first, and the item's match strength: the share of the query's words
 * the evidence has, each word counted by its best match anywhere in the video (1 read on screen or an object's
 * name, a neighbour's similarity otherwise), so "a dog next to a bicycle" prefers the video that shows both.
 * An item's own `match`: for a line, the share of the query's words read in it; for an object, its best word.
 */
export function matchEvidence(
  query: string,
  evidence: readonly StoredEvidence[] | undefined,
): { strength: number; matched: MatchedEvidence[] } {
  const words = queryWords(query);
  if (!evidence?.length || words.length === 0) return { strength: 0, matched: [] };
  const matched: MatchedEvidence[] = [];
  const best = new Map<string, number>();
  for (const e of evidence) {
    const m = wordMatches(e, words);
    if (m.size === 0) continue;
    for (const [w, s] of m) best.set(w, Math.max(best.get(w) ?? 0, s));
    const match = e.kind === 'object' ? Math.max(...m.values()) : m.size / words.length;
    matched.push({ ...e, match: Math.round(match * 1000) / 1000, words: [...m.keys()] });
  }
  matched.sort((a, b) => b.match - a.match || b.confidence - a.confidence || a.startS - b.startS);
  const strength = [...best.values()].reduce((a, b) => a + b, 0) / words.length;
  return { strength, matched };
}

/** The text the text tower encodes for an item's evidence: what was read, then "a photo of a <class>" per class. */
export function evidenceText(evidence: readonly StoredEvidence[]): string {
  const lines = [...new Set(evidence.filter((e) => e.kind !== 'object').map((e) => e.text.trim()))];
  const objects = [...new Set(evidence.filter((e) => e.kind === 'object').map((e) => `a photo of a ${e.text}`))];
  return [...lines, ...objects].join('. ');
}
