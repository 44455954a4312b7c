/** How a text query matches evidence (src/enrich/match.ts): OCR words, object names and their word-vector neighbours. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evidenceTerms, evidenceText, matchEvidence, objectWords, queryWords, toStored, wordForms } from '../../src/enrich/match.ts';
import { blendEvidence } from '../../jobs/enrich.ts';
import type { StoredEvidence } from '../../src/store/types.ts';

const ocr: StoredEvidence = { kind: 'ocr', text: 'BREAKING NEWS: river floods city', startS: 4, endS: 8, confidence: 0.96 };
const dog: StoredEvidence = { kind: 'object', text: 'dog', startS: 0, endS: 6, confidence: 0.41 };
const light: StoredEvidence = { kind: 'object', text: 'traffic light', startS: 2, endS: 3, confidence: 0.5 };

test('query words drop stop words and punctuation', () => {
  assert.deepEqual(queryWords('A puppy, on the Beach!'), ['puppy', 'beach']);
  assert.deepEqual(queryWords('the of and'), []);
  assert.deepEqual(wordForms('kites'), ['kites', 'kite']);
  assert.deepEqual(wordForms('boxes'), ['boxes', 'boxe', 'box']);
  assert.deepEqual(wordForms('glass'), ['glass']);
});

test('terms hold OCR words, class words and their neighbours, never another class name', () => {
  const terms = evidenceTerms([ocr, dog, light]);
  for (const w of ['breaking', 'floods', 'flood', 'dog', 'puppy', 'dogs', 'traffic', 'light']) assert.ok(terms.includes(w), w);
  assert.ok(!terms.includes('cat'), 'cat is a class of its own, not a word for dog');
  assert.deepEqual(terms, [...new Set(terms)].sort());
  assert.equal(objectWords('dog').get('dog'), 1);
  assert.ok(objectWords('dog').get('puppy')! > 0.6 && objectWords('dog').get('puppy')! < 1);
});

test('a word read on screen matches by share of the query, an object by its name or a neighbour', () => {
  const byWord = matchEvidence('river floods', [ocr, dog]);
  assert.equal(byWord.strength, 1);
  assert.deepEqual(
    byWord.matched.map((m) => [m.kind, m.match, m.words]),
    [['ocr', 1, ['river', 'floods']]],
  );
  assert.equal(matchEvidence('river levels', [ocr]).matched[0]!.match, 0.5);
  const puppy = matchEvidence('a puppy playing', [ocr, dog]);
  assert.equal(puppy.matched.length, 1);
  assert.equal(puppy.matched[0]!.text, 'dog');
  // Half the query's words found, one of them through a neighbour (puppy ~ dog 0.72).
  assert.ok(puppy.strength > 0.3 && puppy.strength < 0.5, String(puppy.strength));
  assert.ok(matchEvidence('dog', [dog]).strength > puppy.strength, 'the name beats a neighbour');
  // OCR and object chances unite: both matching is stronger than either.
  const both = matchEvidence('puppy floods', [ocr, dog]).strength;
  assert.ok(both > puppy.strength && both < 1);
  assert.deepEqual(matchEvidence('giraffe', [ocr, dog]), { strength: 0, matched: [] });
  // Plurals match either way: "dogs" finds the dog, "flood" the line that reads "floods".
  assert.equal(matchEvidence('dogs', [dog]).strength, 1);
  assert.equal(matchEvidence('flood', [ocr]).strength, 1);
  assert.equal(matchEvidence('cities', [ocr]).strength, 1);
  // More of the query seen is better: a dog and a bicycle beat a dog alone.
  const bike: StoredEvidence = { kind: 'object', text: 'bicycle', startS: 0, endS: 6, confidence: 0.5 };
  assert.ok(matchEvidence('a dog next to a bicycle', [dog, bike]).strength > matchEvidence('a dog next to a bicycle', [dog]).strength);
  assert.deepEqual(matchEvidence('dog', undefined), { strength: 0, matched: [] });
});

test('stored evidence is rounded; the evidence text reads lines then objects', () => {
  assert.deepEqual(toStored({ kind: 'ocr', text: 'x', startS: 1.23456, endS: 2.5, confidence: 0.98765, frames: 3 }), {
    kind: 'ocr',
    text: 'x',
    startS: 1.235,
    endS: 2.5,
    confidence: 0.988,
  });
  assert.equal(evidenceText([dog, ocr, dog]), 'BREAKING NEWS: river floods city. a photo of a dog');
});

test('the evidence blend is a unit vector between the two, weighted', () => {
  const a = Float32Array.from([1, 0]);
  const b = Float32Array.from([0, 1]);
  const v = blendEvidence(a, b, 0.2);
  assert.ok(Math.abs(Math.hypot(v[0]!, v[1]!) - 1) < 1e-6);
  assert.ok(v[0]! > v[1]! && v[1]! > 0);
  assert.deepEqual(Array.from(blendEvidence(a, b, 0)), [1, 0]);
});
