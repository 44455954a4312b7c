"""Compare exported generations as the service runs them, on the same clips and queries.

    cd encoders && python3 -m montage_encoders.compare \\
        --generation generations/mtg-2026.11-cpu --generation generations/mtg-2026.12-cpu \\
        [--clips 600] [--variant int8] [--out ../var/compare.json]

For each generation, through its ONNX files and its tokenizer.json in Node (encoders/node/embed.ts:
@huggingface/transformers + onnxruntime-node, the service's own path):
- held-out retrieval: the first `--clips` clips of the test split (attribute combinations never
  in training), each rendered at the generation's frame size from t=0 as the trainer's test split
  is, with its caption worded as in training (`corpus.caption`): text->video and video->text R@1/5/10,
  text->fused segment, and audio<->video over the clips with sound;
- paraphrase: the same clips queried with `corpus.paraphrase_caption` (HELDOUT_WORDS only):
  text->video R@1/5/10;
- the text benchmark (textbench.py); for a generation with an open text tower, also the plain
  mean of its word vectors (read from text.onnx's int8 table).
With `--variant int8` each generation is measured a second time through the towers of its
manifest's `variants.int8` (montage_encoders.quantize), same clips and queries, row `<name>+int8`.
Old generations have no PyTorch weights left, which is why this goes through ONNX.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile

import numpy as np

from . import corpus, textbench
from .evaluate import paraphrase_captions
from .export import video_input
from .tokenizer import load_tokenizer

REPO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODE = os.path.join(REPO_DIR, "node_modules", ".bin", "node")


class _Specs:
    def __init__(self, specs):
        self.specs = specs


def heldout_queries(n: int, corpus_seed: int) -> tuple[list, list[str], list[str]]:
    """(specs, captions as in the trainer's test split, paraphrases)."""
    seed = corpus_seed + 1  # data.build_split's seed for "test"
    specs = corpus.sample_specs(n, "test", seed)
    captions = [corpus.caption(s, np.random.default_rng([seed, i])) for i, s in enumerate(specs)]
    return specs, captions, paraphrase_captions(_Specs(specs))


def render(specs, manifest: dict) -> np.ndarray:
    pre = manifest["preprocessing"]["video"]
    s, t, seconds = pre["frame_size"], pre["frames_per_segment"], pre["segment_seconds"]
    rgb = np.stack([corpus.render_frames(spec, s, s, corpus.segment_times(0.0, seconds, t)) for spec in specs])
    return video_input(rgb.astype(np.uint8))


def render_audio(specs, manifest: dict) -> np.ndarray:
    """Each clip's first segment's waveform (t=0), as the service cuts it."""
    from .data import _fit

    a = manifest["preprocessing"]["audio"]
    return np.stack([_fit(corpus.render_audio(s, a["sample_rate"], a["segment_seconds"], 0.0), a["samples"])
                     for s in specs])


def fused_segments(specs, video: np.ndarray, audio: np.ndarray) -> np.ndarray:
    """src/fusion's segment vector: video 0.5 + audio 0.2 over the modalities present, unit norm
    (a silent clip has no audio track, so its segment vector is its video vector)."""
    silent = np.array([bool(s.silent) for s in specs])[:, None]
    fused = 0.5 * video + np.where(silent, 0.0, 0.2) * audio
    return fused / np.linalg.norm(fused, axis=1, keepdims=True)


def node_embed(generation: str, texts: dict[str, list[str]], frames: dict[str, np.ndarray] | None = None,
               waveforms: dict[str, np.ndarray] | None = None, variant: str | None = None) -> dict:
    """Runs encoders/node/embed.ts (frames through video.onnx, waveforms through audio.onnx, or
    the towers of manifest `variants[variant]`); returns name -> (rows, dim) float32."""
    with tempfile.TemporaryDirectory(prefix="montage-compare-") as tmp:
        req = {"generation": os.path.abspath(generation), "out": tmp, "texts": texts, "frames": {}, "waveforms": {},
               **({"variant": variant} if variant else {})}
        for kind, tensors in (("frames", frames), ("waveforms", waveforms)):
            for name, arr in (tensors or {}).items():
                path = os.path.join(tmp, f"in-{kind}-{name}.f32")
                np.ascontiguousarray(arr, dtype="<f4").tofile(path)
                req[kind][name] = {"file": path, "shape": list(arr.shape)}
        with open(os.path.join(tmp, "request.json"), "w") as f:
            json.dump(req, f)
        node = NODE if os.path.exists(NODE) else "node"
        done = subprocess.run([node, os.path.join(REPO_DIR, "encoders", "node", "embed.ts"),
                               os.path.join(tmp, "request.json")], cwd=REPO_DIR, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"embedding with {generation} in Node failed: {done.stderr[-2000:]}")
        shapes = json.load(open(os.path.join(tmp, "done.json")))
        return {k: np.fromfile(os.path.join(tmp, f"{k}.f32"), dtype="<f4").reshape(v) for k, v in shapes.items()}


def _recall(q: np.ndarray, g: np.ndarray, ks=(1, 5, 10)) -> dict:
    sims = q @ g.T  # ties count against the query (see textbench.recall)
    rank = (sims >= sims.diagonal()[:, None] - 1e-6).sum(axis=1) - 1
    return {f"r{k}": round(float((rank < k).mean()), 4) for k in ks}


def bench_texts() -> list[str]:
    return list(dict.fromkeys(list(textbench.COCO) + [q for q, _ in textbench.OBJECT_QUERIES]
                              + list(textbench.OCR_LINES) + [q for q, _ in textbench.OCR_QUERIES]))


def lookup_encoder(texts: list[str], emb: np.ndarray):
    index = {t: i for i, t in enumerate(texts)}
    return lambda batch: emb[[index[t] for t in batch]]


def word_table(generation: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(table float32 (V, d), centre (d,)) from an open text tower's ONNX initializers, else None."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(os.path.join(generation, "text.onnx"))
    inits = {i.name: i for i in model.graph.initializer}
    if "tower.table_q" not in inits:
        return None
    q = numpy_helper.to_array(inits["tower.table_q"]).astype(np.float32)
    scale = numpy_helper.to_array(inits["tower.table_scale"]).reshape(-1, 1)
    return q * scale, numpy_helper.to_array(inits["tower.centre"]).reshape(-1)


def embed_heldout(gen: str, clips: int, variant: str | None = None) -> tuple[dict, dict]:
    """(manifest, embeddings) of the held-out clips, captions, paraphrases and text benchmark,
    through the generation's float32 towers or those of `variant`."""
    manifest = json.load(open(os.path.join(gen, "manifest.json")))
    seed = manifest.get("training", {}).get("config", {}).get("corpus_seed", 1234)
    specs, captions, paraphrases = heldout_queries(clips, seed)
    emb = node_embed(gen, {"heldout": captions, "paraphrase": paraphrases, "bench": bench_texts()},
                     {"video": render(specs, manifest)}, {"audio": render_audio(specs, manifest)}, variant)
    emb["_specs"], emb["_captions"], emb["_paraphrases"] = specs, captions, paraphrases
    return manifest, emb


def score(gen: str, emb: dict) -> dict:
    """The comparison row of one generation (or variant) from embed_heldout's vectors."""
    specs, texts = emb["_specs"], bench_texts()
    v, a = emb["video"], emb["audio"]
    fused = fused_segments(specs, v, a)
    sound = np.array([not s.silent for s in specs])  # silent clips have no audio vector in the service
    row = {"heldout": {"text_to_video": _recall(emb["heldout"], v), "video_to_text": _recall(v, emb["heldout"]),
                       "text_to_fused": _recall(emb["heldout"], fused),
                       "audio_to_video": _recall(a[sound], v[sound]), "video_to_audio": _recall(v[sound], a[sound])},
           "paraphrase": {"text_to_video": _recall(emb["paraphrase"], v),
                          "text_to_fused": _recall(emb["paraphrase"], fused)},
           "text_benchmark": {"tower": textbench.score(lookup_encoder(texts, emb["bench"]))},
           "example": {"caption": emb["_captions"][0], "paraphrase": emb["_paraphrases"][0]}}
    table = word_table(gen)
    if table is not None:
        tok = load_tokenizer(gen)
        row["text_benchmark"]["mean_word_vectors"] = textbench.score(
            textbench.mean_vector_encoder(tok, table[0], table[1]))
    return row


def compare(generations: list[str], clips: int = 600, variant: str | None = None) -> dict:
    out: dict = {"clips": clips, "generations": {}}
    for gen in generations:
        manifest, emb = embed_heldout(gen, clips)
        row = score(gen, emb)
        out["generations"][manifest["generation"]] = row
        print(json.dumps({manifest["generation"]: row}), flush=True)
        if variant:
            _, emb = embed_heldout(gen, clips, variant)
            row = score(gen, emb)
            out["generations"][f"{manifest['generation']}+{variant}"] = row
            print(json.dumps({f"{manifest['generation']}+{variant}": row}), flush=True)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--generation", action="append", required=True)
    ap.add_argument("--clips", type=int, default=600)
    ap.add_argument("--variant", default=None, help="also measure each generation's variant (e.g. int8)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    result = compare(args.generation, args.clips, args.variant)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
