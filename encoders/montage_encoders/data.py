"""Training and held-out sets built from the procedural corpus, with the fixed front ends cached.

The ImageNet part of the frame backbone is frozen, so its block features are computed once per
rendered frame and cached (the exported graph still runs from pixels); log-mels likewise. Light
pixel-space augmentation (brightness, blur, down/up-scaling, quantisation, noise) is applied
BEFORE caching, so the towers have seen roughly what H.264 and a resize do to a frame.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from . import corpus
from .config import Config
from .tokenizer import WordTokenizer

CAPTIONS_PER_CLIP = 8


@dataclass
class Split:
    specs: list
    feats: torch.Tensor  # (N, V, T, C, h, w) float16: frozen backbone features per view
    mels: torch.Tensor  # (N, V, n_mels, frames) float16: log-mel per view
    silent: torch.Tensor  # (N,) bool: no audio track
    captions: list  # N lists of strings
    pixels: torch.Tensor | None = None  # (N, T, 3, S, S) uint8 of view 0, for the from-scratch run
    flipped: torch.Tensor | None = None  # (N,) bool: the clip was mirrored (its captions describe `mirrored(spec)`)

    def __len__(self) -> int:
        return len(self.specs)


def backbone_weights_dir(cfg: Config) -> str | None:
    if not cfg.backbone_pretrained:
        return None
    path = cfg.backbone_weights
    if not path:
        from .backbone import default_weights_dir

        return default_weights_dir()
    if not os.path.isabs(path):  # relative to encoders/, where the trainer runs
        path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), path)
    return path


def normalise(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 (..., 3, S, S) -> float normalised with the backbone's mean/std (the tower input)."""
    from .backbone import BACKBONE_MEAN, BACKBONE_STD

    mean = torch.tensor(BACKBONE_MEAN, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(BACKBONE_STD, dtype=torch.float32).view(3, 1, 1)
    return (pixels.float() / 255.0 - mean) / std


def augment_frames(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """x float (T, 3, S, S) in [0,1]; one random degradation per view (the same on all T)."""
    s = x.shape[-1]
    x = x * rng.uniform(0.8, 1.2) + rng.uniform(-0.06, 0.06)
    if rng.random() < 0.5:  # compression/scaling softness: down then up
        small = max(8, int(s * rng.uniform(0.45, 0.85)))
        x = F.interpolate(F.interpolate(x, size=small, mode="bilinear", align_corners=False),
                          size=s, mode="bilinear", align_corners=False)
    if rng.random() < 0.3:
        k = torch.full((3, 1, 3, 3), 1 / 9.0)
        x = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k, groups=3)
    x = x + torch.from_numpy(rng.normal(0, rng.uniform(0, 0.025), x.shape).astype(np.float32))
    levels = rng.choice([32, 64, 256])
    return (x.clamp(0, 1) * (levels - 1)).round() / (levels - 1)


def augment_audio(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    w = wave * rng.uniform(0.4, 1.0)
    return (w + rng.normal(0, rng.uniform(0, 0.004), w.shape)).astype(np.float32)


def view_starts(cfg: Config, views: int, rng: np.random.Generator, train: bool) -> list[float]:
    span = max(0.0, cfg.clip_seconds - cfg.segment_seconds)
    if not train:
        return [0.0] * views
    return [float(rng.uniform(0, span)) for _ in range(views)]


@torch.no_grad()
def build_split(cfg: Config, split: str, n: int, views: int, backbone, mel, augment: bool,
                keep_pixels: int = 0, log=print, chunk: int = 64, chunk_dir: str | None = None) -> Split:
    """Render n clips of a split, V views each, and cache features/mels (in chunks of clips,
    so the backbone sees reasonable batches).

    With `chunk_dir`, each chunk is also saved there and reused when present: clip i depends only
    on (seed, i), so a run with more clips reuses a smaller run's chunks, and an interrupted build
    resumes where it stopped (renders take ~1 s per clip on a busy 2-core machine)."""
    seed = cfg.corpus_seed + (0 if split == "train" else 1)
    specs = corpus.sample_specs(n, split, seed)
    feats, mels, captions, pixels, flipped = [], [], [], [], []
    started = time.time()
    use_chunks = chunk_dir is not None and keep_pixels == 0
    if use_chunks:
        os.makedirs(chunk_dir, exist_ok=True)
    for lo in range(0, n, chunk):
        path = os.path.join(chunk_dir, f"{split}-{lo:06d}-{min(n, lo + chunk):06d}.pt") if use_chunks else None
        if path and os.path.exists(path):
            part = torch.load(path)
            feats.append(part["feats"])
            mels.append(part["mels"])
            captions.extend(part["captions"])
            flipped.extend(part["flipped"])
            continue
        frames, waves = [], []
        first = len(captions)
        for i in range(lo, min(n, lo + chunk)):
            rng = np.random.default_rng([seed, i])
            # mirror a clip (frames flipped, "left" <-> "right" in its captions) so the video tower
            # learns that a mirrored picture is the same picture; drawn only when enabled, so
            # flip_prob=0 renders exactly what earlier versions rendered
            flip = augment and cfg.flip_prob > 0 and rng.random() < cfg.flip_prob
            f, w = _render_views(cfg, specs[i], views, rng, augment, flip)
            if i < keep_pixels:
                pixels.append(f[0])
            frames.append(f)
            waves.extend(w)
            described = mirrored(specs[i]) if flip else specs[i]
            flipped.append(bool(flip))
            captions.append([corpus.caption(described, rng) for _ in range(CAPTIONS_PER_CLIP)])
        x = torch.stack(frames)  # (n_chunk, V, T, 3, S, S) uint8
        out = backbone(normalise(x.reshape(-1, *x.shape[-3:])))  # (n_chunk*V*T, C, h, w)
        feats.append(out.reshape(*x.shape[:3], *out.shape[1:]).half())
        m = mel(torch.from_numpy(np.stack(waves)))
        mels.append(m.reshape(x.shape[0], views, *m.shape[1:]).half())
        if path:
            tmp = path + ".tmp"
            torch.save({"feats": feats[-1], "mels": mels[-1], "captions": captions[first:],
                        "flipped": flipped[first:]}, tmp)
            os.replace(tmp, path)
        if path or (lo // chunk) % 10 == 9 or lo + chunk >= n:
            log(f"  {split}: {min(n, lo + chunk)}/{n} clips cached ({time.time() - started:.0f}s)")
    silent = torch.tensor([bool(s.silent) for s in specs])
    return Split(specs, torch.cat(feats), torch.cat(mels), silent, captions,
                 torch.stack(pixels) if pixels else None, torch.tensor(flipped))


def mirrored(spec):
    """The spec a horizontally flipped clip shows: leftward motion becomes rightward."""
    import dataclasses

    swap = {"left": "right", "right": "left"}
    return dataclasses.replace(spec, motion=swap.get(spec.motion, spec.motion))


def _render_views(cfg: Config, spec, views: int, rng: np.random.Generator, augment: bool, flip: bool = False):
    """V views of one clip: uint8 frames (V, T, 3, S, S) and V waveforms of `samples`."""
    t, s = cfg.frames_per_segment, cfg.frame_size
    frames, waves = [], []
    for t0 in view_starts(cfg, views, rng, augment):
        times = corpus.segment_times(t0, cfg.segment_seconds, t)
        rgb = torch.from_numpy(np.ascontiguousarray(corpus.render_frames(spec, s, s, times))).permute(0, 3, 1, 2)
        if flip:
            rgb = torch.flip(rgb, dims=[-1])
        if augment:
            rgb = (augment_frames(rgb.float() / 255.0, rng) * 255.0).round().clamp(0, 255).to(torch.uint8)
        frames.append(rgb)
        wave = _fit(corpus.render_audio(spec, cfg.sample_rate, cfg.segment_seconds, t0), cfg.samples)
        waves.append(augment_audio(wave, rng) if augment and not spec.silent else wave)
    return torch.stack(frames), waves


def _fit(wave: np.ndarray, samples: int) -> np.ndarray:
    out = np.zeros(samples, dtype=np.float32)
    out[: min(samples, len(wave))] = wave[:samples]
    return out


def attribute_words() -> list[str]:
    """Every word the corpus can put in a caption, so the tokenizer covers unseen combinations."""
    words = [v for values in corpus.ATTRIBUTES.values() for v in values]
    for table in getattr(corpus, "WORDS", {}).values():
        words.extend(p for phrases in table.values() for p in phrases)
    return words


def build_tokenizer(cfg: Config, train: Split) -> WordTokenizer:
    texts = [c for caps in train.captions for c in caps]
    return WordTokenizer.build(texts, max_length=cfg.max_length, words=attribute_words())


def tokenize(tok: WordTokenizer, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    ids, mask = tok.encode_batch(texts)
    return torch.from_numpy(ids), torch.from_numpy(mask)
