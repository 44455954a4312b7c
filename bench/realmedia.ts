/**
 * bench/realmedia: text → video search on real media, with enrichment (the enrich job: on-screen text and COCO
 * objects) against the plain ingest vectors (the baseline), the same clips and queries in the same run.
 *
 * Groups, one query written per clip, every clip of every group in one store (the others are distractors):
 * - objects: Debian's darknet photographs as clips (slow zooms, 854x480, several seconds; two of them with two
 *   photos in sequence); queried in everyday words ("a dog next to a bicycle", "horses grazing");
 * - ocr: sentences burnt in with ffmpeg drawtext (DejaVu) on plain, gradient and painted backgrounds, appearing
 *   after the first second; queried by two words of the sentence;
 * - speech: espeak-ng sentences over a plain picture; queried by words of the sentence (no speech engine is
 *   indexed, src/enrich/README.md: reported as measured);
 * - paraphrase: procedural corpus clips (held-out split) queried with corpus.paraphrase_caption, words never in
 *   the training captions ("a miniature crimson orb scoots right on an ebony background").
 * Each group: {clips, r1, r5, baseline_r1, baseline_r5}; plus the enrich job's seconds per video minute.
 *
 *   node bench/realmedia.ts [--generation DIR] [--baseline-generation DIR] [--vector-weight W] [--evidence-boost B] [--out FILE]
 * Both default to the served generation (encoders/generations/DEFAULT). Writes bench/results/realmedia.json.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { startTestService, waitForJob, type TestService } from '../test/helpers/service.ts';
import { corpusClip } from '../test/helpers/clips.ts';
import { defaultGenerationDir, ROOT } from '../test/helpers/generation.ts';
import { missingFiles, sceneClip, type Scene } from '../test/helpers/enrich-media.ts';
import { multipart } from '../test/helpers/multipart.ts';

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    generation: { type: 'string' },
    'baseline-generation': { type: 'string' },
    out: { type: 'string' },
    // To measure the enrichment settings (README "Configuration"): the service defaults when unset.
    'vector-weight': { type: 'string' },
    'evidence-boost': { type: 'string' },
  },
});
const settings: Record<string, string> = {
  ...(values['vector-weight'] !== undefined ? { MONTAGE_ENRICH_VECTOR_WEIGHT: values['vector-weight'] } : {}),
  ...(values['evidence-boost'] !== undefined ? { MONTAGE_EVIDENCE_BOOST: values['evidence-boost'] } : {}),
};
const served = defaultGenerationDir();
if (!served) throw new Error('no served generation (encoders/generations/DEFAULT)');
const generation = path.resolve(values.generation ?? served);
const baselineGeneration = path.resolve(values['baseline-generation'] ?? served);
const missing = missingFiles();
if (missing.length) throw new Error(`missing ${missing.join(', ')}: apt packages darknet, fonts-dejavu-core (scripts/deps.tsv)`);

type Group = 'objects' | 'ocr' | 'speech' | 'paraphrase';
interface Clip {
  name: string;
  group: Group;
  query: string;
  make: (out: string) => Promise<void>;
}

const W = 854;
const H = 480;
const photo = (name: string, seconds = 6): Scene => ({ seconds, background: { photo: name } });
const captioned = (text: string, background: Scene['background']): ((out: string) => Promise<void>) => {
  return (out) =>
    sceneClip(
      out,
      [
        { seconds: 1, background },
        { seconds: 4, background, captions: [{ text, size: 36, border: 2, font: 'bold' }] },
      ],
      { w: W, h: H },
    );
};

/** A plain picture with espeak-ng reading `text` (WAV from espeak, muxed as AAC). */
function spoken(text: string, color: string, voice: string): (out: string) => Promise<void> {
  return async (out) => {
    const wav = `${out}.wav`;
    await run('espeak-ng', ['-v', voice, '-s', '150', '-w', wav, text]);
    await run('ffmpeg', [
      '-v',
      'error',
      '-y',
      '-f',
      'lavfi',
      '-i',
      `color=c=${color}:s=640x360:r=10`,
      '-i',
      wav,
      '-c:v',
      'libx264',
      '-pix_fmt',
      'yuv420p',
      '-c:a',
      'aac',
      '-shortest',
      out,
    ]);
  };
}

/** A held-out corpus clip and its paraphrased caption (HELDOUT_WORDS only). */
async function paraphrased(seed: number): Promise<{ query: string; make: (out: string) => Promise<void> }> {
  const code =
    'import sys, numpy as np\n' +
    'from montage_encoders.corpus import sample_specs, paraphrase_caption\n' +
    'spec = sample_specs(1, "test", int(sys.argv[1]))[0]\n' +
    'print(paraphrase_caption(spec, np.random.default_rng(int(sys.argv[1]))))\n';
  const { stdout } = await run('/usr/bin/python3', ['-c', code, String(seed)], { cwd: path.join(ROOT, 'encoders') });
  return {
    query: stdout.trim(),
    make: async (out) => void (await corpusClip(out, ['--seed', String(seed), '--split', 'test', '--seconds', '4', '--size', '160x160'])),
  };
}

const clips: Clip[] = [
  {
    name: 'dog',
    group: 'objects',
    query: 'a dog next to a bicycle',
    make: (o) => sceneClip(o, [photo('dog')], { w: W, h: H, zoom: true }),
  },
  { name: 'giraffe', group: 'objects', query: 'a giraffe', make: (o) => sceneClip(o, [photo('giraffe')], { w: W, h: H, zoom: true }) },
  { name: 'kite', group: 'objects', query: 'people flying kites', make: (o) => sceneClip(o, [photo('kite')], { w: W, h: H, zoom: true }) },
  {
    name: 'scream-horses',
    group: 'objects',
    query: 'horses grazing',
    make: (o) => sceneClip(o, [photo('scream', 4), photo('horses', 4)], { w: W, h: H, zoom: true }),
  },
  {
    name: 'person-eagle',
    group: 'objects',
    query: 'a bird',
    make: (o) => sceneClip(o, [photo('person', 4), photo('eagle', 4)], { w: W, h: H, zoom: true }),
  },
  { name: 'ocr-news', group: 'ocr', query: 'river floods', make: captioned('BREAKING NEWS: river floods city', { color: '0x102040' }) },
  { name: 'ocr-berlin', group: 'ocr', query: 'berlin tonight', make: captioned('Live from Berlin tonight', { gradient: true }) },
  { name: 'ocr-tyre', group: 'ocr', query: 'flat tyre', make: captioned('How to fix a flat tyre', { color: '0x404040' }) },
  { name: 'ocr-pie', group: 'ocr', query: 'apple pie', make: captioned("Grandma's apple pie recipe", { photo: 'scream' }) },
  {
    name: 'ocr-earnings',
    group: 'ocr',
    query: 'quarterly earnings',
    make: captioned('Quarterly earnings beat forecasts', { color: '0x303018' }),
  },
  { name: 'ocr-jazz', group: 'ocr', query: 'jazz festival', make: captioned('Welcome to the jazz festival', { gradient: true }) },
  {
    name: 'ocr-volcano',
    group: 'ocr',
    query: 'volcano eruption',
    make: captioned('Chapter 3: the volcano eruption', { color: '0x200808' }),
  },
  { name: 'ocr-spanish', group: 'ocr', query: 'spanish verbs', make: captioned('Lesson 12 - Spanish verbs', { color: '0x082008' }) },
  {
    name: 'speech-balloon',
    group: 'speech',
    query: 'red balloon sunset',
    make: spoken('the red balloon floats over the river at sunset', '0x334455', 'en-us'),
  },
  {
    name: 'speech-train',
    group: 'speech',
    query: 'train station',
    make: spoken('the last train leaves the station at midnight', '0x443322', 'en-gb'),
  },
  {
    name: 'speech-garden',
    group: 'speech',
    query: 'tomatoes garden',
    make: spoken('we planted tomatoes in the garden this spring', '0x224433', 'en-us'),
  },
  {
    name: 'speech-piano',
    group: 'speech',
    query: 'piano lessons',
    make: spoken('she practises the piano every morning before school', '0x443344', 'en-gb'),
  },
];
for (let i = 0; i < 8; i++) {
  const seed = 7100 + i;
  clips.push({ name: `paraphrase-${seed}`, group: 'paraphrase', ...(await paraphrased(seed)) });
}

const GROUPS: Group[] = ['objects', 'ocr', 'speech', 'paraphrase'];
const workDir = path.join(os.tmpdir(), `montage-realmedia-${process.pid}`);
await mkdir(workDir, { recursive: true });
const files = new Map<string, string>();
for (const c of clips) {
  const file = path.join(workDir, `${c.name}.mp4`);
  await c.make(file);
  files.set(c.name, file);
}

interface Pass {
  ranks: Map<string, number>;
  /** Per query: the clip ranked first and the evidence it matched by. */
  tops: Map<string, { clip: string; evidence: string[] }>;
  enrichS: number;
  videoS: number;
  engines: Record<string, { seconds: number; items: number; states: Record<string, number> }>;
  generation: string;
}

/** Ingests every clip on one service (enrichment on or off), waits for each enrichment, runs every query. */
async function pass(generationDir: string, enrich: boolean): Promise<Pass> {
  const svc: TestService = await startTestService({
    workers: true,
    env: {
      MONTAGE_GENERATION_DIR: generationDir,
      LOG_LEVEL: 'warn',
      ...(enrich ? settings : { MONTAGE_ENRICH_OCR: 'off', MONTAGE_ENRICH_OBJECTS: 'off' }),
    },
  });
  try {
    const ids = new Map<string, string>();
    let enrichS = 0;
    let videoS = 0;
    const engines: Pass['engines'] = {};
    for (const c of clips) {
      const { payload, headers } = multipart({ title: `clip ${ids.size + 1}` }, { data: await readFile(files.get(c.name)!) });
      const r = await svc.app.inject({ method: 'POST', url: '/v1/videos', payload, headers });
      if (r.statusCode !== 202) throw new Error(`upload of ${c.name}: ${r.statusCode} ${r.body}`);
      const { jobId, videoId } = r.json() as { jobId: string; videoId: string };
      const job = await waitForJob(svc, jobId, 600_000);
      if (job.state !== 'completed') throw new Error(`ingest of ${c.name} failed: ${JSON.stringify(job)}`);
      ids.set(c.name, videoId);
      // Enrichment runs alone, before the next upload, so its time is its own.
      for (;;) {
        const ej = await svc.rt.jobs.queue('enrich').getJob(`enrich-${videoId}`);
        const state = ej ? await ej.getState() : 'missing';
        if (ej && (state === 'completed' || state === 'failed')) {
          enrichS += (ej.finishedOn! - ej.processedOn!) / 1000;
          break;
        }
        await new Promise((res) => setTimeout(res, 100));
      }
      const rec = (await svc.rt.catalog.get(videoId))!;
      videoS += rec.durationS ?? 0;
      for (const [name, st] of Object.entries(rec.enrichments ?? {})) {
        const e = (engines[name] ??= { seconds: 0, items: 0, states: {} });
        e.seconds += st.seconds ?? 0;
        e.items += st.items ?? 0;
        e.states[st.state] = (e.states[st.state] ?? 0) + 1;
      }
      console.error(`${enrich ? 'enriched' : 'baseline'} ${c.name}: ${JSON.stringify(rec.enrichments ?? {})}`);
    }
    const ranks = new Map<string, number>();
    const tops: Pass['tops'] = new Map();
    const nameOf = new Map([...ids].map(([name, id]) => [id, name]));
    for (const c of clips) {
      const r = await svc.app.inject({ method: 'POST', url: '/v1/search', payload: { text: c.query, limit: 10 } });
      const hits = (r.json() as { hits: { videoId: string; evidence?: { kind: string; text: string; match: number }[] }[] }).hits;
      const rank = hits.findIndex((h) => h.videoId === ids.get(c.name));
      ranks.set(c.name, rank < 0 ? Infinity : rank + 1);
      const top = hits[0];
      if (top)
        tops.set(c.name, { clip: nameOf.get(top.videoId)!, evidence: (top.evidence ?? []).map((e) => `${e.kind}:${e.text}:${e.match}`) });
    }
    return { ranks, tops, enrichS, videoS, engines, generation: svc.rt.encoders.generation.name };
  } finally {
    await svc.close();
  }
}

const t0 = performance.now();
const enriched = await pass(generation, true);
const baseline = await pass(baselineGeneration, false);
const recall = (p: Pass, g: Group, k: number) => {
  const mine = clips.filter((c) => c.group === g);
  return +(mine.filter((c) => p.ranks.get(c.name)! <= k).length / mine.length).toFixed(3);
};
const groups = Object.fromEntries(
  GROUPS.map((g) => [
    g,
    {
      clips: clips.filter((c) => c.group === g).length,
      r1: recall(enriched, g, 1),
      r5: recall(enriched, g, 5),
      baseline_r1: recall(baseline, g, 1),
      baseline_r5: recall(baseline, g, 5),
    },
  ]),
);
const out = {
  generated_at: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, load_1m: +os.loadavg()[0]!.toFixed(1) },
  generation: enriched.generation,
  baseline_generation: baseline.generation,
  settings,
  command: 'node bench/realmedia.ts [--generation DIR] [--baseline-generation DIR]',
  note: 'one query per clip, all 25 clips in one store; r1/r5 = text search on the service with enrichment (OCR + objects, evidence boost and vector blend at their defaults); baseline = the same clips and queries on the plain ingest vectors (enrichment off). speech: no engine is indexed (pocketsphinx WER 0.772), so it is the audio tower alone in both. enrich_seconds_per_video_minute = enrich job wall seconds (run alone after each ingest) / video minutes, on a shared 2-core machine.',
  ...groups,
  enrich_seconds_per_video_minute: +((enriched.enrichS / enriched.videoS) * 60).toFixed(2),
  engines: enriched.engines,
  video_seconds: +enriched.videoS.toFixed(1),
  queries: clips.map((c) => ({
    group: c.group,
    clip: c.name,
    query: c.query,
    rank: enriched.ranks.get(c.name),
    baseline_rank: baseline.ranks.get(c.name),
    top: enriched.tops.get(c.name),
  })),
  wall_s: +((performance.now() - t0) / 1000).toFixed(1),
};
const target = values.out ?? path.join(ROOT, 'bench', 'results', 'realmedia.json');
await writeFile(target, `${JSON.stringify(out, (_, v) => (v === Infinity ? null : v), 2)}\n`);
console.log(JSON.stringify({ ...groups, enrich_seconds_per_video_minute: out.enrich_seconds_per_video_minute, wall_s: out.wall_s }));
