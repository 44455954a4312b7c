"""Train the video, audio and text towers together with the cross-modal contrastive loss.

    cd encoders && OMP_NUM_THREADS=2 /usr/bin/python3 -m montage_encoders.train --out runs/NAME \\
        [--preset cpu|gpu|tiny] [--set key=value ...] [--resume]

Seeded and reproducible; AdamW with warm-up and cosine decay; atomic checkpoints (written to a
temp file, then renamed) carrying the resolved config; resumable; CUDA when present. Writes
runs/NAME/{cache.pt, ckpt.pt, tokenizer.json, metrics.json, train.log}. Export with
`python3 -m montage_encoders.export --run runs/NAME --name GEN`.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import sys
import time

import numpy as np
import torch

from . import config as config_mod
from . import corpus
from .config import Config
from .data import CAPTIONS_PER_CLIP, Split, build_split, build_tokenizer, mirrored, tokenize
from .evaluate import (chance_row, embed_split, format_table, heldout_metrics, paraphrase_metrics, photo_top1,
                       text_benchmark)
from .losses import ContrastiveLoss
from .model import MontageModel, make_backbone, make_text_tower, param_groups, pick_device, set_word_table
from .tokenizer import WordPieceTokenizer, WordTokenizer
from .towers import LogMel, TextTower, VideoTower


class Logger:
    def __init__(self, path: str | None):
        self.f = open(path, "a") if path else None

    def __call__(self, msg: str) -> None:
        # a full disk (shared machines) must not kill a long run because of a progress line
        try:
            print(msg, flush=True)
            if self.f:
                self.f.write(msg + "\n")
                self.f.flush()
        except OSError:
            pass


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def atomic_save(obj, path: str) -> None:
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def lr_at(step: int, cfg: Config) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


# ------------------------------------------------------------------ data
def prepare_data(cfg: Config, out: str, log) -> tuple[Split, Split, float]:
    """Build (or reload) the cached train and test splits. Returns (train, test, seconds)."""
    path = os.path.join(out, "cache.pt")
    if os.path.exists(path):
        blob = torch.load(path)
        if blob["key"] == _cache_key(cfg):
            log(f"data: reusing {path}")
            return Split(**blob["train"]), Split(**blob["test"]), blob["seconds"]
    started = time.time()
    backbone, _ = make_backbone(cfg)
    backbone.eval()
    mel = LogMel(cfg).eval()
    keep = cfg.scratch_train_clips if cfg.scratch_steps > 0 else 0
    log(f"data: rendering {cfg.train_clips} train clips x {cfg.views_per_clip} views and {cfg.test_clips} test clips")
    chunks = chunk_dir(cfg, out)
    test = build_split(cfg, "test", cfg.test_clips, 1, backbone, mel, False,
                       cfg.test_clips if cfg.scratch_steps > 0 else 0, log, chunk_dir=chunks)
    train = build_split(cfg, "train", cfg.train_clips, cfg.views_per_clip, backbone, mel, True, keep, log,
                        chunk_dir=chunks)
    seconds = time.time() - started
    atomic_save({"key": _cache_key(cfg), "train": vars(train), "test": vars(test), "seconds": seconds}, path)
    log(f"data: cached in {seconds:.0f}s -> {path}")
    return train, test, seconds


def chunk_dir(cfg: Config, out: str) -> str:
    """Chunks shared by every run beside `out` that renders clips the same way (whatever the
    number of clips): <parent of out>/.chunks/<hash of the rendering settings>."""
    import hashlib

    key = {k: v for k, v in _cache_key(cfg).items() if k not in ("train_clips", "test_clips", "pixels",
                                                                  "scratch_train_clips")}
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return os.path.join(os.path.dirname(os.path.abspath(out)), ".chunks", digest)


def _cache_key(cfg: Config) -> dict:
    keys = ("frame_size", "frames_per_segment", "segment_seconds", "backbone_up_to", "backbone_pretrained",
            "sample_rate", "n_fft", "hop", "n_mels", "f_min", "f_max", "train_clips", "test_clips",
            "views_per_clip", "corpus_seed", "clip_seconds", "scratch_train_clips", "flip_prob")
    key = {k: getattr(cfg, k, None) for k in keys}
    if not key["flip_prob"]:
        key.pop("flip_prob")  # caches written before the option existed stay valid
    return {**key, "pixels": cfg.scratch_steps > 0}


def caption_ids(tok: WordTokenizer, split: Split) -> tuple[torch.Tensor, torch.Tensor]:
    """All captions pre-tokenized: (N, CAPTIONS_PER_CLIP, L) ids and masks."""
    flat = [c for caps in split.captions for c in caps]
    ids, mask = tokenize(tok, flat)
    return ids.view(len(split), CAPTIONS_PER_CLIP, -1), mask.view(len(split), CAPTIONS_PER_CLIP, -1)


class Batches:
    """Seeded epochs of shuffled clip indices; the order depends only on (seed, epoch)."""

    def __init__(self, n: int, batch: int, seed: int):
        self.n, self.batch, self.seed = n, min(batch, n), seed

    def get(self, step: int) -> np.ndarray:
        per_epoch = self.n // self.batch
        epoch, k = divmod(step, per_epoch)
        perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
        return perm[k * self.batch:(k + 1) * self.batch]


def fresh_captions(step: int, idx: np.ndarray, train: Split, tok, cfg: Config) -> tuple[torch.Tensor, torch.Tensor]:
    """A new caption per sample and step from corpus.varied_caption (seeded by step and clip)."""
    texts = []
    for i in idx:
        spec = train.specs[int(i)]
        if train.flipped is not None and bool(train.flipped[int(i)]):
            spec = mirrored(spec)
        texts.append(corpus.varied_caption(spec, np.random.default_rng([cfg.seed, 17, step, int(i)])))
    return tokenize(tok, texts)


def make_batch(step: int, idx: np.ndarray, train: Split, ids: torch.Tensor | None, mask: torch.Tensor | None,
               cfg: Config, device, tok=None) -> tuple:
    """Random view and random caption wording per sample, seeded by step: one of the 8 cached
    captions, or (ids None) a fresh varied caption."""
    rng = np.random.default_rng([cfg.seed, 7, step])
    view = torch.from_numpy(rng.integers(0, train.feats.shape[1], len(idx)))
    cap = torch.from_numpy(rng.integers(0, CAPTIONS_PER_CLIP, len(idx)))
    t = torch.from_numpy(idx)
    if ids is None:
        bids, bmask = fresh_captions(step, idx, train, tok, cfg)
    else:
        bids, bmask = ids[t, cap], mask[t, cap]
    width = max(1, int(bmask.sum(1).max()))  # pad only to the longest caption: same output, less work
    feats = train.feats[t, view].float()
    mels = train.mels[t, view].float()
    present = {"audio": ~train.silent[t]}
    return (feats.to(device), mels.to(device), bids[:, :width].to(device), bmask[:, :width].to(device),
            {k: v.to(device) for k, v in present.items()})


# ------------------------------------------------------------------ general-English guard
class Guard:
    """Phrases of 1-3 random English words (from the `guard_max_rank` most frequent word vectors,
    so about a third fall outside the vocabulary and reach the tower as pieces) and their
    reference: the centred mean of their TRUE word vectors, L2-normalised."""

    def __init__(self, cfg: Config, wv, centre: np.ndarray):
        hi = min(cfg.guard_max_rank, len(wv))
        rows = [r for r in range(50, hi) if wv.words[r].isalpha() and wv.words[r].isascii()]
        self.words = [wv.words[r] for r in rows]
        self.vectors = wv.vectors[rows] - centre[None]
        self.seed = cfg.seed

    def batch(self, step: int, n: int) -> tuple[list[str], torch.Tensor]:
        rng = np.random.default_rng([self.seed, 13, step])
        texts, refs = [], []
        for _ in range(n):
            pick = rng.integers(len(self.words), size=int(rng.integers(1, 4)))
            texts.append(" ".join(self.words[j] for j in pick))
            refs.append(self.vectors[pick].mean(axis=0))
        ref = torch.from_numpy(np.stack(refs))
        return texts, ref / ref.norm(dim=1, keepdim=True).clamp(min=1e-8)


def guard_loss(emb: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between the tower's cosine similarities of the phrases and the
    word-vector ones, off the diagonal: the tower may rotate and rescale general English, but
    not reorder what is near what."""
    n = emb.shape[0]
    off = ~torch.eye(n, dtype=torch.bool, device=emb.device)
    return ((emb @ emb.t() - ref @ ref.t())[off] ** 2).mean()


# ------------------------------------------------------------------ training
def train_loop(cfg: Config, model: MontageModel, opt, train: Split, tok, out: str,
               start_step: int, timings: dict, log, guard: Guard | None = None) -> list[float]:
    """Runs steps start_step..cfg.steps; returns the loss of each step run."""
    device = next(model.parameters()).device
    ids, mask = (None, None) if cfg.varied_captions else caption_ids(tok, train)
    if cfg.varied_captions and cfg.flip_prob > 0 and train.flipped is None:
        raise ValueError(f"{out}/cache.pt predates the record of mirrored clips, so fresh captions cannot say "
                         "left/right correctly: delete it to rebuild, or --set varied_captions=false")
    batches = Batches(len(train), cfg.batch_size, cfg.seed)
    model.train()
    window_start, window_steps, losses = time.time(), 0, []
    for step in range(start_step, cfg.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        feats, mels, bids, bmask, present = make_batch(step, batches.get(step), train, ids, mask, cfg, device, tok)
        loss, parts = model.loss(model.embed_cached(feats, mels, bids, bmask), present)
        if guard is not None and cfg.w_guard > 0:
            texts, ref = guard.batch(step, cfg.guard_batch)
            gids, gmask = tokenize(tok, texts)
            w = max(1, int(gmask.sum(1).max()))  # 1-3 words: trim the padding, as make_batch does
            gids, gmask = gids[:, :w], gmask[:, :w]
            g = guard_loss(model.text(gids.to(device), gmask.to(device)), ref.to(device))
            loss = loss + cfg.w_guard * g
            parts["guard"] = float(g.detach())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(float(loss))
        window_steps += 1
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            rate = window_steps / (time.time() - window_start)
            pairs = " ".join(f"{k} {v:.3f}" for k, v in parts.items())
            log(f"step {step + 1}/{cfg.steps} loss {float(loss):.4f} [{pairs}] "
                f"temp {1 / float(model.loss.scale()):.4f} lr {lr_at(step, cfg):.2e} {rate:.2f} steps/s")
            window_start, window_steps = time.time(), 0
        if (step + 1) % cfg.ckpt_every == 0 or step + 1 == cfg.steps:
            timings["train_seconds"] = timings.get("train_seconds", 0.0) + (time.time() - timings.pop("_t0"))
            try:
                save_checkpoint(out, cfg, model, opt, step + 1, tok, timings)
            except OSError as err:  # keep training; the previous checkpoint is still intact
                log(f"warning: checkpoint at step {step + 1} not written: {err}")
            timings["_t0"] = time.time()
    return losses


def save_checkpoint(out, cfg, model, opt, step, tok, timings) -> None:
    atomic_save({"config": cfg.to_dict(), "model": model.state_dict(), "optimizer": opt.state_dict(),
                 "step": step, "vocab": tok.vocab, "timings": {k: v for k, v in timings.items() if k != "_t0"}},
                os.path.join(out, "ckpt.pt"))


def checkpoint_config(ck: dict) -> Config:
    saved = ck["config"]
    if "text_vocab" not in saved:  # checkpoints from before the open vocabulary
        saved = {**saved, "text_vocab": "corpus"}
    return config_mod.from_dict(saved)


def tokenizer_for(cfg: Config, vocab: dict):
    return WordTokenizer(vocab, cfg.max_length) if cfg.text_vocab == "corpus" else WordPieceTokenizer(vocab, cfg.max_length)


def load_run(run: str, device=torch.device("cpu")) -> dict:
    """Model, config and tokenizer of a run's checkpoint (used by evaluate and export). The open
    tower's word table is part of the checkpoint (buffers), so no word vectors are needed here."""
    ck = torch.load(os.path.join(run, "ckpt.pt"), map_location=device)
    cfg = checkpoint_config(ck)
    tok = tokenizer_for(cfg, ck["vocab"])
    backbone, channels = make_backbone(cfg)
    model = MontageModel(cfg, len(tok), backbone, channels).to(device)
    model.load_state_dict(ck["model"])
    model.eval()
    return {"cfg": cfg, "model": model, "tok": tok, "step": ck["step"], "timings": ck.get("timings", {})}


# ------------------------------------------------------------------ evaluation
def evaluate_run(cfg: Config, model: MontageModel, train: Split, test: Split, tok, device, log) -> dict:
    started = time.time()
    trained = heldout_metrics(embed_split(model, test, tok, device), test.silent)
    seed_all(cfg.seed + 1)
    backbone, channels = make_backbone(cfg)
    untrained_model = MontageModel(cfg, len(tok), backbone, channels).to(device)
    copy_word_table(model, untrained_model)
    untrained = heldout_metrics(embed_split(untrained_model, test, tok, device), test.silent)
    chance = chance_row(trained["gallery_size"], trained["audio_gallery_size"])
    log(f"held-out retrieval: gallery {trained['gallery_size']} clips (audio rows: "
        f"{trained['audio_gallery_size']} with sound; silent clips excluded)")
    log(format_table({"trained": trained, "untrained": untrained, "chance": chance}))
    photos = photo_top1(model.video, cfg, device)
    log(f"real photographs (crops/flip/JPEG -> original), trained model: top-1 {photos.get('top1')}")
    metrics = {"heldout": trained, "untrained": untrained, "chance": chance, "photos": {"trained": photos}}
    metrics["paraphrase"] = paraphrase_metrics(model, test, tok, cfg, device)
    log(f"paraphrased held-out captions (words never in training), text->video: "
        f"{metrics['paraphrase']['text_to_video']}")
    metrics["text_benchmark"] = text_benchmark(model, tok, device)
    log(f"text benchmark (COCO names vs synonym queries; OCR lines vs word queries): "
        f"{json.dumps(metrics['text_benchmark'])}")
    if cfg.scratch_steps > 0:
        metrics["backbone_comparison"] = backbone_comparison(cfg, train, test, tok, device, log, model.text)
    metrics["eval_seconds"] = round(time.time() - started, 1)
    return metrics


def copy_word_table(src: torch.nn.Module, dst: torch.nn.Module) -> None:
    """Give an untrained open text tower the trained one's (frozen) word table: the untrained
    baseline differs only in what training changes."""
    src = getattr(src, "text", src)
    dst = getattr(dst, "text", dst)
    if hasattr(src, "table_q") and hasattr(dst, "table_q"):
        with torch.no_grad():
            for name in ("table_q", "table_scale", "centre"):
                getattr(dst, name).copy_(getattr(src, name))


def backbone_comparison(cfg: Config, train: Split, test: Split, tok, device, log, model_text=None) -> dict:
    """Pretrained-frozen vs random-init-trained-end-to-end frame backbone, same video tower, same
    budget: `scratch_steps` steps of video-text InfoNCE on view 0 of the first
    `scratch_train_clips` train clips, batch 32; held-out text->video and photos for both."""
    result = {"protocol": f"{cfg.scratch_steps} steps, batch 32, lr {cfg.lr} with warm-up and cosine, "
                          f"video-text loss only, {train.pixels.shape[0]} train clips (view 0), same seed"}
    ids, mask = caption_ids(tok, train)
    for name, pretrained in (("pretrained_frozen", True), ("scratch_end_to_end", False)):
        seed_all(cfg.seed)
        backbone, channels = make_backbone(cfg, pretrained)
        if not pretrained:  # Keras's BN momentum (0.999) would leave a fresh net's running stats at init
            for m in backbone.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.momentum = 0.1
        video = VideoTower(cfg, backbone, channels, trainable_backbone=not pretrained).to(device)
        text = make_text_tower(cfg, len(tok)).to(device)
        copy_word_table(model_text, text)
        loss_fn = ContrastiveLoss({"video-text": 1.0}, cfg.init_temperature, cfg.max_logit_scale).to(device)
        params = [p for m in (video, text, loss_fn) for p in m.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        started = time.time()
        warm = max(1, cfg.scratch_steps // 6)  # without warm-up a fresh Transformer collapses at lr 1e-3
        sched = Config(**{**cfg.to_dict(), "steps": cfg.scratch_steps, "warmup_steps": warm})
        for step in range(cfg.scratch_steps):
            for g in opt.param_groups:
                g["lr"] = lr_at(step, sched)
            vid = _comparison_step(cfg, step, video, text, loss_fn, opt, train, ids, mask, pretrained, device)
            if (step + 1) % max(1, cfg.scratch_steps // 5) == 0:
                log(f"  {name} step {step + 1}/{cfg.scratch_steps} loss {vid:.4f}")
        seconds = time.time() - started
        m = _comparison_eval(cfg, video, text, test, tok, pretrained, device)
        m["photos"] = photo_top1(video, cfg, device)
        m["train_seconds"] = round(seconds, 1)
        log(f"  {name}: text->video {m['text_to_video']} video->text {m['video_to_text']} "
            f"photos top-1 {m['photos'].get('top1')} ({seconds:.0f}s)")
        result[name] = m
    return result


def _comparison_step(cfg, step, video, text, loss_fn, opt, train, ids, mask, pretrained, device) -> float:
    from .data import normalise

    video.train(), text.train()
    rng = np.random.default_rng([cfg.seed, 11, step])
    idx = torch.from_numpy(rng.choice(train.pixels.shape[0], 32, replace=False))
    cap = torch.from_numpy(rng.integers(0, CAPTIONS_PER_CLIP, len(idx)))
    if pretrained:  # the frozen backbone's output for these exact frames is already cached
        v = video.head(train.feats[idx, 0].float().reshape(-1, *train.feats.shape[3:]).to(device))
    else:
        v = video(normalise(train.pixels[idx]).to(device))
    t = text(ids[idx, cap].to(device), mask[idx, cap].to(device))
    loss, _ = loss_fn({"video": v, "text": t})
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss)


@torch.no_grad()
def _comparison_eval(cfg, video, text, test: Split, tok, pretrained, device) -> dict:
    from .data import normalise

    video.eval(), text.eval()
    vs, ts = [], []
    for lo in range(0, len(test), 64):
        sl = slice(lo, lo + 64)
        if pretrained:
            vs.append(video.head(test.feats[sl, 0].float().reshape(-1, *test.feats.shape[3:]).to(device)).cpu())
        else:
            vs.append(video(normalise(test.pixels[sl]).to(device)).cpu())
        ids, mask = tokenize(tok, [c[0] for c in test.captions[sl]])
        ts.append(text(ids.to(device), mask.to(device)).cpu())
    from .evaluate import recall

    v, t = torch.cat(vs), torch.cat(ts)
    return {"text_to_video": recall(t, v), "video_to_text": recall(v, t)}


# ------------------------------------------------------------------ main
def open_vocab(cfg: Config, log):
    from . import textvocab

    vocab = textvocab.build(cfg.vocab_words, cfg.vocab_pieces, cfg.max_length, fit_words=cfg.vocab_fit_words)
    log(f"vocabulary: {json.dumps(vocab.info)}")
    return vocab


def hardware() -> dict:
    info = {"machine": platform.machine(), "cpus": os.cpu_count(), "torch": torch.__version__,
            "python": platform.python_version(), "threads": torch.get_num_threads()}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def run(cfg: Config, out: str, resume: bool = False) -> dict:
    os.makedirs(out, exist_ok=True)
    log = Logger(os.path.join(out, "train.log"))
    t_start = time.time()
    torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    seed_all(cfg.seed)
    log(f"config: {json.dumps(cfg.to_dict())}")
    train, test, data_seconds = prepare_data(cfg, out, log)
    ckpt_path = os.path.join(out, "ckpt.pt")
    ck = torch.load(ckpt_path, map_location="cpu") if resume and os.path.exists(ckpt_path) else None
    vocab = None
    if ck:
        tok = tokenizer_for(cfg, ck["vocab"])
    elif cfg.text_vocab == "corpus":
        tok = build_tokenizer(cfg, train)
    else:
        vocab = open_vocab(cfg, log)
        tok = vocab.tok
    tok.save(out)
    seed_all(cfg.seed)
    backbone, channels = make_backbone(cfg)
    model = MontageModel(cfg, len(tok), backbone, channels).to(device)
    if vocab is not None:
        from .wordvec import quantize_rows

        q, scale = quantize_rows(vocab.table)
        set_word_table(model.text, q, scale, vocab.centre)
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.98))
    start_step, timings = 0, {"data_seconds": round(data_seconds, 1)}
    if ck:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        start_step, timings = ck["step"], dict(ck.get("timings", timings))
        log(f"resumed from {ckpt_path} at step {start_step}")
    guard = None
    if cfg.text_vocab == "open" and cfg.w_guard > 0:
        from . import wordvec

        guard = Guard(cfg, wordvec.load(), model.text.centre.cpu().numpy()[0])
    log(f"model: vocab {len(tok)}, trainable parameters "
        f"{sum(p.numel() for p in model.parameters() if p.requires_grad):,}, device {device}")
    timings["_t0"] = time.time()
    losses = train_loop(cfg, model, opt, train, tok, out, start_step, timings, log, guard)
    timings.pop("_t0", None)
    metrics = evaluate_run(cfg, model, train, test, tok, device, log)
    metrics["timings"] = {**timings, "eval_seconds": metrics.pop("eval_seconds"),
                          "this_invocation_seconds": round(time.time() - t_start, 1)}
    metrics["hardware"] = hardware()
    metrics["steps"] = cfg.steps
    metrics["losses"] = [round(x, 4) for x in losses]
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
    log(f"done in {time.time() - t_start:.0f}s: {os.path.join(out, 'metrics.json')}")
    return metrics


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="run folder (checkpoints, cache, logs, metrics)")
    ap.add_argument("--preset", default="cpu", choices=sorted(config_mod.PRESETS))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a Config field")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/ckpt.pt")
    args = ap.parse_args(argv)
    cfg = config_mod.resolve(args.preset, args.set)
    if args.resume and os.path.exists(os.path.join(args.out, "ckpt.pt")):
        saved = checkpoint_config(torch.load(os.path.join(args.out, "ckpt.pt"), map_location="cpu"))
        if args.set or args.preset != "cpu":
            print("note: --resume uses the checkpoint's config; --preset/--set ignored", file=sys.stderr)
        cfg = saved
    run(cfg, args.out, args.resume)


if __name__ == "__main__":
    main()
