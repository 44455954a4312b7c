"""Procedural video corpus: coloured shapes moving over backgrounds, with tones and noise.

There is no public video corpus on the training machine, so Montage makes its own. A clip is
described by a `ClipSpec` (picture attributes, sound attributes and a jitter seed) and
rendered on demand at any size and time, so nothing is ever stored or committed.

The sound is coupled to the picture only *partly* (waveform ~ shape family, pitch ~ size,
rhythm ~ motion with probability `COUPLING`), as in real video, so audio<->video retrieval is
learnable but not a lookup. A stable hash of (shape, colour, motion, background) holds out
1/8 of the combinations: those appear only in the "test" split, while every single value
still appears in "train".

numpy only (no torch), so Node tests and benchmarks can call the CLI:
    python3 -m montage_encoders.corpus clip --out x.mp4 --seed 3 --seconds 4
    python3 -m montage_encoders.corpus caption --seed 3
    python3 -m montage_encoders.corpus sample --n 600 --split test --out test.jsonl
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "shape": ("circle", "square", "triangle", "star", "cross", "ring", "diamond", "hexagon"),
    "colour": ("red", "green", "blue", "yellow", "purple", "orange", "white", "cyan"),
    "size": ("small", "medium", "large"),
    "motion": ("still", "left", "right", "up", "down", "pulsing", "bouncing"),
    "background": ("black", "grey", "stripes", "checkerboard", "noise", "gradient"),
    "waveform": ("sine", "square", "sawtooth", "triangle"),
    "pitch": ("low", "mid", "high"),
    "rhythm": ("steady", "beeping", "rising", "falling", "warbling"),
    "noise": ("none", "white", "pink", "brown"),
}
HELDOUT_KEY = ("shape", "colour", "motion", "background")
HELDOUT_MODULUS = 8
COUPLING = 0.75
SILENT_RATE = 0.1

# Partial picture->sound coupling: which sound a shape/size/motion "usually" makes.
SHAPE_WAVEFORM = {"circle": "sine", "ring": "sine", "square": "square", "cross": "square",
                  "triangle": "sawtooth", "star": "sawtooth", "diamond": "triangle",
                  "hexagon": "triangle"}
SIZE_PITCH = {"small": "high", "medium": "mid", "large": "low"}
MOTION_RHYTHM = {"still": "steady", "pulsing": "beeping", "bouncing": "beeping", "up": "rising",
                 "down": "falling", "left": "warbling", "right": "warbling"}


@dataclass(frozen=True)
class ClipSpec:
    """One clip. Sound fields are kept (valid values) but ignored when `silent`."""
    shape: str
    colour: str
    size: str
    motion: str
    background: str
    waveform: str
    pitch: str
    rhythm: str
    noise: str
    silent: bool
    seed: int  # jitter: start position, speed, phase, hue, texture

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "ClipSpec":
        spec = ClipSpec(**{f.name: d[f.name] for f in dataclasses.fields(ClipSpec)})
        validate(spec)
        return spec

    def key(self) -> tuple:
        """Every attribute but the jitter seed: two clips with the same key read the same."""
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "seed")


def validate(spec: ClipSpec) -> None:
    for name, values in ATTRIBUTES.items():
        if getattr(spec, name) not in values:
            raise ValueError(f"ClipSpec.{name}={getattr(spec, name)!r}; expected one of {values}")


# ----------------------------------------------------------------------------- sampling

def heldout_hash(shape: str, colour: str, motion: str, background: str) -> int:
    key = "|".join((shape, colour, motion, background)).encode()
    return int.from_bytes(hashlib.sha1(key).digest()[:8], "big")


def is_heldout(spec: ClipSpec) -> bool:
    """True when the (shape, colour, motion, background) combination belongs only to "test"."""
    return heldout_hash(*(getattr(spec, k) for k in HELDOUT_KEY)) % HELDOUT_MODULUS == 0


def heldout_combinations() -> list[tuple[str, str, str, str]]:
    combos = [(s, c, m, b) for s in ATTRIBUTES["shape"] for c in ATTRIBUTES["colour"]
              for m in ATTRIBUTES["motion"] for b in ATTRIBUTES["background"]]
    return [k for k in combos if heldout_hash(*k) % HELDOUT_MODULUS == 0]


def _pick(rng: np.random.Generator, name: str) -> str:
    values = ATTRIBUTES[name]
    return values[int(rng.integers(len(values)))]


def _coupled(rng: np.random.Generator, name: str, usual: str) -> str:
    return usual if rng.random() < COUPLING else _pick(rng, name)


def _sample_one(rng: np.random.Generator, picture: tuple[str, str, str, str]) -> ClipSpec:
    shape, colour, motion, background = picture
    size = _pick(rng, "size")
    return ClipSpec(
        shape=shape, colour=colour, size=size, motion=motion, background=background,
        waveform=_coupled(rng, "waveform", SHAPE_WAVEFORM[shape]),
        pitch=_coupled(rng, "pitch", SIZE_PITCH[size]),
        rhythm=_coupled(rng, "rhythm", MOTION_RHYTHM[motion]),
        noise=_pick(rng, "noise"),
        silent=bool(rng.random() < SILENT_RATE),
        seed=int(rng.integers(2**31 - 1)),
    )


def sample_specs(n: int, split: str, seed: int) -> list[ClipSpec]:
    """n clips of one split, deterministic per (split, seed); a shorter n is a prefix.

    "train" draws pictures uniformly outside the held-out combinations; "test" draws them
    uniformly from the held-out combinations and never repeats a clip key, so a test gallery
    has no two clips that a caption could not tell apart.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    heldout = heldout_combinations()
    specs: list[ClipSpec] = []
    seen: set[tuple] = set()
    while len(specs) < n:
        if split == "test":
            picture = heldout[int(rng.integers(len(heldout)))]
        else:
            picture = tuple(_pick(rng, k) for k in HELDOUT_KEY)
            if heldout_hash(*picture) % HELDOUT_MODULUS == 0:
                continue
        spec = _sample_one(rng, picture)
        if split == "test":
            if spec.key() in seen:
                continue
            seen.add(spec.key())
        specs.append(spec)
    return specs


# ----------------------------------------------------------------------------- picture

COLOURS = {"red": (0.90, 0.10, 0.10), "green": (0.10, 0.78, 0.20), "blue": (0.15, 0.30, 0.95),
           "yellow": (0.95, 0.90, 0.10), "purple": (0.62, 0.20, 0.85), "orange": (1.00, 0.55, 0.05),
           "white": (0.95, 0.95, 0.95), "cyan": (0.10, 0.90, 0.90)}
RADIUS = {"small": 0.085, "medium": 0.14, "large": 0.22}
SQRT3 = float(np.sqrt(3.0))


def _box(x, y, bx, by):
    dx, dy = np.abs(x) - bx, np.abs(y) - by
    outside = np.hypot(np.maximum(dx, 0), np.maximum(dy, 0))
    return outside + np.minimum(np.maximum(dx, dy), 0)


def _triangle(x, y, r):
    # Equilateral triangle pointing up (image y grows downwards), r = half the side.
    x, y = np.abs(x) - r, -y + r / SQRT3
    fold = (x + SQRT3 * y) > 0
    x, y = np.where(fold, (x - SQRT3 * y) / 2, x), np.where(fold, (-SQRT3 * x - y) / 2, y)
    x = x - np.clip(x, -2 * r, 0)
    return -np.hypot(x, y) * np.sign(y)


def _star(x, y, r, rf=0.45):
    # Five-pointed star (Inigo Quilez's sdStar5), one point up.
    k1x, k1y = 0.809016994375, -0.587785252292
    x, y = np.abs(x), -y
    d = 2 * np.maximum(k1x * x + k1y * y, 0)
    x, y = x - d * k1x, y - d * k1y
    d = 2 * np.maximum(-k1x * x + k1y * y, 0)
    x, y = x + d * k1x, y - d * k1y
    x, y = np.abs(x), y - r
    bax, bay = rf * -k1y, rf * k1x - 1
    h = np.clip((x * bax + y * bay) / (bax * bax + bay * bay), 0, r)
    return np.hypot(x - bax * h, y - bay * h) * np.sign(y * bax - x * bay)


def _hexagon(x, y, r):
    kx, ky, kz = -0.866025404, 0.5, 0.577350269
    x, y = np.abs(x), np.abs(y)
    d = 2 * np.minimum(kx * x + ky * y, 0)
    x, y = x - d * kx, y - d * ky
    x, y = x - np.clip(x, -kz * r, kz * r), y - r
    return np.hypot(x, y) * np.sign(y)


def shape_sdf(shape: str, x: np.ndarray, y: np.ndarray, r: float) -> np.ndarray:
    """Signed distance (normalised units, <0 inside) of a shape of nominal radius r at 0,0."""
    if shape == "circle":
        return np.hypot(x, y) - r
    if shape == "ring":
        return np.abs(np.hypot(x, y) - 0.72 * r) - 0.28 * r
    if shape == "square":
        return _box(x, y, 0.86 * r, 0.86 * r)
    if shape == "diamond":
        return (np.abs(x) + np.abs(y) - 1.2 * r) / np.sqrt(2)
    if shape == "cross":
        return np.minimum(_box(x, y, 1.05 * r, 0.32 * r), _box(x, y, 0.32 * r, 1.05 * r))
    if shape == "triangle":
        return _triangle(x, y + 0.25 * r, 1.05 * r)
    if shape == "star":
        return _star(x, y, 1.2 * r)
    if shape == "hexagon":
        return _hexagon(x, y, 0.95 * r)
    raise ValueError(f"unknown shape {shape!r}")


@dataclass(frozen=True)
class _Jitter:
    """Per-clip randomness, derived from spec.seed only."""
    x0: float
    y0: float
    vx: float
    vy: float
    radius: float
    angle: float
    pulse_hz: float
    pulse_phase: float
    rgb: tuple[float, float, float]


def _jitter(spec: ClipSpec) -> _Jitter:
    rng = np.random.default_rng([spec.seed, 11])
    speed = rng.uniform(0.22, 0.30)  # normalised units/s: 30-45 px between first and last frame at 96 px
    x0, y0 = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7)
    vx = vy = 0.0
    if spec.motion == "left":
        vx, x0 = -speed, rng.uniform(0.7, 0.85)
    elif spec.motion == "right":
        vx, x0 = speed, rng.uniform(0.15, 0.3)
    elif spec.motion == "up":
        vy, y0 = -speed, rng.uniform(0.7, 0.85)
    elif spec.motion == "down":
        vy, y0 = speed, rng.uniform(0.15, 0.3)
    elif spec.motion == "bouncing":
        theta = rng.choice([1, 3, 5, 7]) * np.pi / 4 + rng.uniform(-0.3, 0.3)
        vx, vy = 1.6 * speed * np.cos(theta), 1.6 * speed * np.sin(theta)
    base = np.array(COLOURS[spec.colour])
    rgb = np.clip((base + rng.normal(0, 0.035, 3)) * rng.uniform(0.88, 1.0), 0, 1)
    return _Jitter(x0=float(x0), y0=float(y0), vx=float(vx), vy=float(vy),
                   radius=RADIUS[spec.size] * rng.uniform(0.9, 1.1),
                   angle=float(rng.uniform(-0.2, 0.2)), pulse_hz=float(rng.uniform(0.6, 0.85)),
                   pulse_phase=float(rng.uniform(0, 2 * np.pi)), rgb=tuple(float(c) for c in rgb))


def _fold(p: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Reflect p into [lo, hi] (a ball bouncing between two walls)."""
    span = hi - lo
    q = np.mod(p - lo, 2 * span)
    return lo + np.where(q > span, 2 * span - q, q)


def object_track(spec: ClipSpec, times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre x, y (normalised, left/right/up/down wrap around the frame) and scale per time."""
    j, t = _jitter(spec), np.asarray(times, dtype=np.float64)
    x, y = j.x0 + j.vx * t, j.y0 + j.vy * t
    scale = np.ones_like(t)
    if spec.motion == "bouncing":
        margin = 1.1 * j.radius
        x, y = _fold(x, margin, 1 - margin), _fold(y, margin, 1 - margin)
    elif spec.motion == "pulsing":
        scale = 1 + 0.38 * np.sin(2 * np.pi * j.pulse_hz * t + j.pulse_phase)
    return np.mod(x, 1.0), np.mod(y, 1.0), scale


def _smooth_step(v: np.ndarray) -> np.ndarray:
    return np.clip(v, 0, 1) ** 2 * (3 - 2 * np.clip(v, 0, 1))


@lru_cache(maxsize=32)
def _background(spec: ClipSpec, width: int, height: int) -> np.ndarray:
    """Static background (height, width, 3) float32 in [0,1]; dark or mid-grey so objects pop."""
    rng = np.random.default_rng([spec.seed, 23])
    u = (np.arange(width, dtype=np.float32) + 0.5) / width
    v = (np.arange(height, dtype=np.float32) + 0.5) / height
    uu, vv = np.meshgrid(u, v)
    tint = rng.uniform(0.8, 1.2, 3).astype(np.float32)
    kind = spec.background
    if kind == "black":
        level = np.full((height, width), rng.uniform(0.0, 0.05), np.float32)
    elif kind == "grey":
        level = np.full((height, width), rng.uniform(0.38, 0.46), np.float32)
    elif kind == "stripes":
        direction = [(1, 0), (0, 1), (0.7, 0.7), (0.7, -0.7)][int(rng.integers(4))]
        period = rng.uniform(0.08, 0.14)
        wave = np.sin(2 * np.pi * (uu * direction[0] + vv * direction[1]) / period)
        level = 0.08 + 0.24 * _smooth_step(0.5 + wave * 2)
    elif kind == "checkerboard":
        cells = int(rng.integers(6, 11))
        level = np.where((np.floor(uu * cells) + np.floor(vv * cells)) % 2 == 0, 0.08, 0.32)
    elif kind == "noise":
        grid = rng.uniform(0.04, 0.42, (48, 48, 3)).astype(np.float32)
        iy, ix = (vv * 48).astype(int), (uu * 48).astype(int)
        return np.clip(grid[iy, ix], 0, 1)
    elif kind == "gradient":
        lo, hi = rng.uniform(0.0, 0.12, 3), rng.uniform(0.25, 0.5, 3)
        angle = rng.uniform(0, 2 * np.pi)
        ramp = np.clip(0.5 + (uu - 0.5) * np.cos(angle) + (vv - 0.5) * np.sin(angle), 0, 1)
        return (lo + (hi - lo) * ramp[..., None]).astype(np.float32)
    else:
        raise ValueError(f"unknown background {kind!r}")
    return np.clip(level[..., None].astype(np.float32) * tint, 0, 1)


@lru_cache(maxsize=32)
def _background_u8(spec: ClipSpec, width: int, height: int) -> np.ndarray:
    return (_background(spec, width, height) * 255 + 0.5).astype(np.uint8)


def _draw_object(out: np.ndarray, background: np.ndarray, spec: ClipSpec, j: _Jitter,
                 cx: float, cy: float, scale: float) -> None:
    """Composite one object centred at (cx, cy) over the float background into the uint8 frame
    `out` (H, W, 3), touching only the object's bounding box (the rest is already background)."""
    height, width = out.shape[:2]
    r = j.radius * scale
    aa = 1.0 / min(width, height)  # one pixel of anti-aliasing
    outline = max(1.2 * aa, 0.012)
    extent = 1.35 * r + outline + 2 * aa
    px0, px1 = int(np.floor((cx - extent) * width)), int(np.ceil((cx + extent) * width))
    py0, py1 = int(np.floor((cy - extent) * height)), int(np.ceil((cy + extent) * height))
    px0, px1, py0, py1 = max(px0, 0), min(px1, width), max(py0, 0), min(py1, height)
    if px0 >= px1 or py0 >= py1:
        return
    x = (np.arange(px0, px1, dtype=np.float32) + 0.5) / width - cx
    y = (np.arange(py0, py1, dtype=np.float32) + 0.5) / height - cy
    x, y = np.meshgrid(x, y)
    c, s = np.cos(j.angle), np.sin(j.angle)
    sdf = shape_sdf(spec.shape, c * x + s * y, -s * x + c * y, r)
    fill = np.clip(0.5 - sdf / aa, 0, 1)[..., None]
    edge = np.clip(0.5 - (sdf - outline) / aa, 0, 1)[..., None]
    rgb = np.asarray(j.rgb, np.float32)
    patch = background[py0:py1, px0:px1] * (1 - edge) + edge * (0.2 * rgb)  # dark rim: readable on textures
    patch = patch * (1 - fill) + fill * rgb
    out[py0:py1, px0:px1] = (patch * 255 + 0.5).astype(np.uint8)


def render_frames(spec: ClipSpec, width: int, height: int, times: np.ndarray) -> np.ndarray:
    """RGB uint8 frames (len(times), height, width, 3) of the clip at the given times (seconds).

    Positions are in normalised coordinates, so a clip rendered at 1280x720 and stretched to a
    square looks like the same clip rendered square.
    """
    times = np.atleast_1d(np.asarray(times, dtype=np.float64))
    background, background_u8 = _background(spec, width, height), _background_u8(spec, width, height)
    j = _jitter(spec)
    xs, ys, scales = object_track(spec, times)
    out = np.empty((len(times), height, width, 3), np.uint8)
    out[:] = background_u8
    for i in range(len(times)):
        # Torus copies: an object leaving one edge enters the other. Copies sit a frame apart
        # and an object spans under half a frame, so their boxes never overlap.
        for dx in (-1.0, 0.0, 1.0):
            for dy in (-1.0, 0.0, 1.0):
                _draw_object(out[i], background, spec, j, xs[i] + dx, ys[i] + dy, scales[i])
    return out


def segment_times(t0: float, segment_seconds: float, frames: int) -> np.ndarray:
    """Frame times of one segment, as the service samples them: t0 + (i+0.5)*seg/frames."""
    return t0 + (np.arange(frames) + 0.5) * segment_seconds / frames


# ----------------------------------------------------------------------------- sound

PITCH_HZ = {"low": 140.0, "mid": 370.0, "high": 980.0}


def _tone_phase(spec: ClipSpec, t: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Phase in cycles and amplitude envelope of the tone at times t (analytic, so chunks join)."""
    f0 = PITCH_HZ[spec.pitch] * 2 ** rng.uniform(-0.25, 0.25)
    period = rng.uniform(0.7, 1.1)
    phase0 = rng.uniform(0, 1)
    envelope = np.ones_like(t)
    if spec.rhythm in ("rising", "falling"):
        k, sign = 1.5, (1.0 if spec.rhythm == "rising" else -1.0)  # 1.5-octave sweeps
        u = np.mod(t / period, 1.0)
        per_cycle = f0 * period * (2 ** (k / 2) - 2 ** (-k / 2)) / (k * np.log(2))
        within = f0 * period * (2 ** (sign * k * (u - 0.5)) - 2 ** (-sign * k / 2)) / (sign * k * np.log(2))
        phase = np.floor(t / period) * per_cycle + within
        envelope = _smooth_step(np.minimum(u, 1 - u) / 0.04)  # short fades between sweeps
    elif spec.rhythm == "warbling":
        rate, depth = rng.uniform(5, 7), 0.06
        phase = f0 * t - f0 * depth / (2 * np.pi * rate) * np.cos(2 * np.pi * rate * t)
    else:
        phase = f0 * t
        if spec.rhythm == "beeping":
            beep = period * 0.45
            u = np.mod(t / beep, 1.0)
            envelope = _smooth_step(np.minimum(u, 0.5 - u) / 0.03)  # on half the time
    return phase + phase0, envelope


def _waveform(kind: str, phase: np.ndarray) -> np.ndarray:
    frac = np.mod(phase, 1.0)
    if kind == "sine":
        return np.sin(2 * np.pi * frac)
    if kind == "square":
        return np.tanh(6 * np.sin(2 * np.pi * frac)) * 0.8
    if kind == "sawtooth":
        return 2 * frac - 1
    if kind == "triangle":
        return 2 * np.abs(2 * frac - 1) - 1
    raise ValueError(f"unknown waveform {kind!r}")


def _noise_block(spec: ClipSpec, sample_rate: int, block: int) -> np.ndarray:
    """One second of unit-RMS coloured noise, seeded by its absolute block index."""
    rng = np.random.default_rng([spec.seed, 31, block])
    white = rng.standard_normal(sample_rate)
    if spec.noise == "white":
        return white
    exponent = 0.5 if spec.noise == "pink" else 1.0  # amplitude ~ f^-exponent
    spectrum = np.fft.rfft(white)
    freqs = np.fft.rfftfreq(sample_rate, 1.0 / sample_rate)
    spectrum *= np.maximum(freqs, 20.0) ** -exponent
    coloured = np.fft.irfft(spectrum, n=sample_rate)
    return coloured / (coloured.std() + 1e-9)


def _noise(spec: ClipSpec, sample_rate: int, start: int, n: int) -> np.ndarray:
    first, last = start // sample_rate, (start + n - 1) // sample_rate
    blocks = np.concatenate([_noise_block(spec, sample_rate, b) for b in range(first, last + 1)])
    offset = start - first * sample_rate
    return blocks[offset:offset + n]


def render_audio(spec: ClipSpec, sample_rate: int, seconds: float, t0: float = 0.0) -> np.ndarray:
    """Mono float32 PCM in [-1, 1] from t0 for `seconds`; zeros when the clip is silent.

    Samples are indexed absolutely (round(t0*sample_rate) onwards), so rendering a long clip in
    chunks gives exactly the samples of rendering it at once.
    """
    n = int(round(seconds * sample_rate))
    if spec.silent or n <= 0:
        return np.zeros(max(n, 0), np.float32)
    start = int(round(t0 * sample_rate))
    t = (start + np.arange(n)) / sample_rate
    rng = np.random.default_rng([spec.seed, 29])
    phase, envelope = _tone_phase(spec, t, rng)
    level = rng.uniform(0.35, 0.55)
    signal = level * envelope * _waveform(spec.waveform, phase)
    if spec.noise != "none":
        signal += rng.uniform(0.08, 0.14) * _noise(spec, sample_rate, start, n)
    return np.clip(signal, -1, 1).astype(np.float32)


# ----------------------------------------------------------------------------- captions

WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "size": {"small": ("small", "tiny", "little"), "medium": ("medium", "medium-sized", "mid-sized"),
             "large": ("large", "big", "huge")},
    "colour": {"red": ("red", "scarlet"), "green": ("green", "emerald"), "blue": ("blue", "azure"),
               "yellow": ("yellow", "golden"), "purple": ("purple", "violet"),
               "orange": ("orange", "amber"), "white": ("white", "snow-white"),
               "cyan": ("cyan", "turquoise")},
    "shape": {"circle": ("circle", "disc", "round dot"), "square": ("square", "box"),
              "triangle": ("triangle",), "star": ("star", "five-pointed star"),
              "cross": ("cross", "plus sign"), "ring": ("ring", "hoop", "donut"),
              "diamond": ("diamond", "rhombus"), "hexagon": ("hexagon", "six-sided shape")},
    "motion": {"still": ("sits still", "stays put", "rests motionless", "does not move"),
               "left": ("drifts left", "moves to the left", "slides leftward", "travels left"),
               "right": ("drifts right", "moves to the right", "slides rightward", "travels right"),
               "up": ("rises", "floats upward", "moves up", "climbs"),
               "down": ("sinks", "falls downward", "moves down", "descends"),
               "pulsing": ("pulses", "grows and shrinks", "throbs in size", "swells and shrinks"),
               "bouncing": ("bounces around", "bounces off the edges", "ricochets around the frame")},
    "background": {"black": ("black", "pitch-black", "dark black"), "grey": ("grey", "gray", "plain grey"),
                   "stripes": ("striped", "stripy", "banded"),
                   "checkerboard": ("checkerboard", "checkered", "chequered"),
                   "noise": ("noisy", "speckled", "static-noise"),
                   "gradient": ("gradient", "fading gradient", "smoothly shaded")},
    "waveform": {"sine": ("sine", "pure sine", "smooth sine"), "square": ("square-wave", "buzzy square-wave"),
                 "sawtooth": ("sawtooth", "harsh sawtooth"), "triangle": ("triangle-wave", "soft triangle-wave")},
    "pitch": {"low": ("low", "deep", "low-pitched"), "mid": ("mid-pitched", "medium-pitched", "middle"),
              "high": ("high", "high-pitched", "shrill")},
    "rhythm": {"steady": ("hums steadily", "holds a steady note", "drones on"),
               "beeping": ("beeps", "beeps on and off", "beeps rhythmically"),
               "rising": ("sweeps upward", "rises in pitch", "glides up"),
               "falling": ("sweeps downward", "falls in pitch", "glides down"),
               "warbling": ("warbles", "wobbles", "trembles with vibrato")},
    "noise": {"none": ("",), "white": ("white noise", "a white-noise hiss"),
              "pink": ("pink noise", "soft pink noise"), "brown": ("brown noise", "a brown-noise rumble")},
}


def _w(rng: np.random.Generator, attribute: str, value: str) -> str:
    options = WORDS[attribute][value]
    return options[int(rng.integers(len(options)))]


def _choice(rng: np.random.Generator, options: list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _picture_phrase(spec: ClipSpec, rng: np.random.Generator, subject_first: bool = False) -> str:
    size, colour = _w(rng, "size", spec.size), _w(rng, "colour", spec.colour)
    shape, motion = _w(rng, "shape", spec.shape), _w(rng, "motion", spec.motion)
    bg = _w(rng, "background", spec.background)
    where = _choice(rng, [f"on {_article(bg)} background", f"against {_article(bg)} backdrop",
                          f"over {_article(bg)} background", f"in front of {_article(bg)} backdrop"])
    forms = [f"{_article(size)} {colour} {shape} {motion} {where}",
             f"{_article(colour)} {shape}, {size}, {motion} {where}"]
    if not subject_first:
        forms.append(f"{where}, {_article(size)} {colour} {shape} {motion}")
    return _choice(rng, forms)


def _sound_parts(spec: ClipSpec, rng: np.random.Generator) -> tuple[str, str]:
    """(tone noun phrase, "<rhythm verb><noise bed>")."""
    pitch, wave = _w(rng, "pitch", spec.pitch), _w(rng, "waveform", spec.waveform)
    tone = f"{_article(pitch)} {wave} tone"
    if spec.noise == "none":
        bed = _choice(rng, ["", " with no background noise", " in clean silence"])
    else:
        noise = _w(rng, "noise", spec.noise)
        bed = _choice(rng, [f" over {noise}", f" with {noise} in the background", f" amid {noise}"])
    return tone, _w(rng, "rhythm", spec.rhythm) + bed


def caption(spec: ClipSpec, rng: np.random.Generator) -> str:
    """A caption that truly describes the picture and the sound, worded differently per rng."""
    picture = _picture_phrase(spec, rng)
    if spec.silent:
        return _choice(rng, [f"silent clip: {picture}", f"{picture}, with no sound",
                             f"{picture}; the clip is silent", f"no audio. {picture}"])
    tone, does = _sound_parts(spec, rng)
    if rng.random() < 0.25:  # sound first, so word order is not a fixed slot per attribute
        return f"{tone} {does}, as {_picture_phrase(spec, rng, subject_first=True)}"
    return _choice(rng, [f"{picture} while {tone} {does}", f"{picture}; audio: {tone} that {does}",
                         f"{picture}, with {tone} that {does}"])


# ----------------------------------------------------------------------------- varied wording
# Training captions of the open-vocabulary text tower draw from WORDS plus TRAIN_EXTRA and from
# more sentence forms (short query-like ones too), so synonyms are learnt from data, not only
# inherited from the word vectors. HELDOUT_WORDS are never used in training (a test checks it):
# the paraphrase evaluation rewrites held-out captions with them ("crimson orb" for "red circle").
# Both lists were written before any model was trained with them.
TRAIN_EXTRA: dict[str, dict[str, tuple[str, ...]]] = {
    "size": {"small": ("compact", "smallish"), "medium": ("middle-sized", "mid-size"),
             "large": ("giant", "massive", "oversized")},
    "colour": {"red": ("ruby", "cherry", "cherry-red"), "green": ("lime", "olive", "grass-green"),
               "blue": ("sapphire", "navy", "sky-blue"), "yellow": ("lemon", "canary", "lemon-yellow"),
               "purple": ("lilac", "plum", "magenta"), "orange": ("apricot", "copper", "pumpkin-orange"),
               "white": ("pearl", "milky", "snowy"), "cyan": ("aqua", "aquamarine", "sky-cyan")},
    "shape": {"circle": ("ball", "sphere", "round blob"), "square": ("block", "square box"),
              "triangle": ("triangular shape", "three-sided shape"), "star": ("starburst", "star shape"),
              "cross": ("x-shaped cross", "plus shape"), "ring": ("halo", "annulus"),
              "diamond": ("diamond shape", "tilted square"), "hexagon": ("six-sided polygon", "hex")},
    "motion": {"still": ("stands still", "hovers in place", "is motionless"),
               "left": ("heads left", "goes left", "glides to the left"),
               "right": ("heads right", "goes right", "glides to the right"),
               "up": ("drifts upward", "goes up", "lifts upward"),
               "down": ("drops", "goes down", "drifts downward"),
               "pulsing": ("inflates and deflates", "keeps growing and shrinking"),
               "bouncing": ("zigzags around", "bounces back and forth")},
    "background": {"black": ("dark", "inky black"), "grey": ("silver", "greyish"),
                   "stripes": ("lined", "streaky"), "checkerboard": ("checked", "checker-patterned"),
                   "noise": ("fuzzy", "staticky"), "gradient": ("shaded", "graded")},
    "pitch": {"low": ("bassy",), "mid": ("moderate-pitched",), "high": ("squeaky",)},
    "rhythm": {"steady": ("hums constantly",), "beeping": ("pings repeatedly",), "rising": ("climbs in pitch",),
               "falling": ("drops in pitch",), "warbling": ("quavers",)},
}
TRAIN_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    a: {v: WORDS[a][v] + TRAIN_EXTRA.get(a, {}).get(v, ()) for v in WORDS[a]} for a in WORDS}

HELDOUT_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "size": {"small": ("miniature",), "medium": ("average-sized",), "large": ("enormous",)},
    "colour": {"red": ("crimson",), "green": ("jade",), "blue": ("cobalt",), "yellow": ("mustard",),
               "purple": ("lavender",), "orange": ("tangerine",), "white": ("ivory",), "cyan": ("teal",)},
    "shape": {"circle": ("orb",), "square": ("tile",), "triangle": ("wedge",), "star": ("pentagram",),
              "cross": ("crucifix",), "ring": ("loop",), "diamond": ("lozenge",), "hexagon": ("hexagonal figure",)},
    "motion": {"still": ("remains stationary",), "left": ("scoots left",), "right": ("scoots right",),
               "up": ("ascends",), "down": ("plummets",), "pulsing": ("expands and contracts",),
               "bouncing": ("rebounds around",)},
    "background": {"black": ("ebony",), "grey": ("slate",), "stripes": ("pinstriped",),
                   "checkerboard": ("chessboard",), "noise": ("grainy",), "gradient": ("blended",)},
}
HELDOUT_KEYWORDS = ("miniature", "average", "enormous", "crimson", "jade", "cobalt", "mustard", "lavender",
                    "tangerine", "ivory", "teal", "orb", "tile", "wedge", "pentagram", "crucifix", "loop",
                    "lozenge", "hexagonal", "figure", "stationary", "remains", "scoots", "ascends", "plummets",
                    "expands", "contracts", "rebounds", "ebony", "slate", "pinstriped", "chessboard", "grainy",
                    "blended")


def _tw(rng: np.random.Generator, attribute: str, value: str) -> str:
    options = TRAIN_WORDS[attribute][value]
    return options[int(rng.integers(len(options)))]


def varied_caption(spec: ClipSpec, rng: np.random.Generator) -> str:
    """A true caption in wider wording than `caption`: synonyms from TRAIN_WORDS, more sentence
    forms, and short query-like forms that leave the sound (and sometimes the backdrop) out."""
    if rng.random() < 0.3:
        return caption(spec, rng)
    size, colour = _tw(rng, "size", spec.size), _tw(rng, "colour", spec.colour)
    shape, motion = _tw(rng, "shape", spec.shape), _tw(rng, "motion", spec.motion)
    bg = _tw(rng, "background", spec.background)
    where = _choice(rng, [f"on {_article(bg)} background", f"against {_article(bg)} backdrop",
                          f"with {_article(bg)} background behind it", f"over {_article(bg)} background"])
    forms = [f"{_article(size)} {colour} {shape} {motion} {where}",
             f"{size} {colour} {shape} {motion}, {bg} background",
             f"{colour} {shape} that {motion}, {size}, {where}",
             f"video of {_article(size)} {colour} {shape} that {motion} {where}",
             f"there is {_article(size)} {colour} {shape}; it {motion} {where}",
             f"{size} {colour} {shape} {where}, it {motion}",
             f"{colour} {shape} {motion} {where}",
             f"{size} {colour} {shape} {motion}"]
    picture = _choice(rng, forms)
    if spec.silent:
        return _choice(rng, [picture, f"{picture}, silent", f"silent video: {picture}", f"{picture}, no sound"])
    if rng.random() < 0.4:
        return picture
    pitch, wave = _tw(rng, "pitch", spec.pitch), _tw(rng, "waveform", spec.waveform)
    return f"{picture}; sound: {_article(pitch)} {wave} tone that {_tw(rng, 'rhythm', spec.rhythm)}"


def paraphrase_caption(spec: ClipSpec, rng: np.random.Generator) -> str:
    """The picture described with HELDOUT_WORDS only (never seen in training) for the words that
    name an attribute: "a miniature crimson orb scoots right against an ebony backdrop"."""
    def h(attribute: str, value: str) -> str:
        options = HELDOUT_WORDS[attribute][value]
        return options[int(rng.integers(len(options)))]

    size, colour, shape = h("size", spec.size), h("colour", spec.colour), h("shape", spec.shape)
    motion, bg = h("motion", spec.motion), h("background", spec.background)
    return _choice(rng, [f"{_article(size)} {colour} {shape} {motion} on {_article(bg)} background",
                         f"{_article(size)} {colour} {shape} {motion} against {_article(bg)} backdrop"])


# ----------------------------------------------------------------------------- clips (ffmpeg)

@dataclass(frozen=True)
class Scene:
    spec: ClipSpec
    start: float
    end: float


def _scene_at(scenes: list[Scene], t: float) -> Scene:
    for scene in scenes:
        if t < scene.end:
            return scene
    return scenes[-1]


def _write_audio(scenes: list[Scene], path: str, sample_rate: int, seconds: float) -> None:
    """Render the audio track to a raw f32le file, one second at a time (bounded memory)."""
    total = int(round(seconds * sample_rate))
    with open(path, "wb") as f:
        for start in range(0, total, sample_rate):
            n = min(sample_rate, total - start)
            t = (start + np.arange(n)) / sample_rate
            chunk = np.zeros(n, np.float32)
            for scene in scenes:
                inside = (t >= scene.start) & (t < scene.end)
                if inside.any():
                    first = int(np.argmax(inside))
                    local = render_audio(scene.spec, sample_rate, inside.sum() / sample_rate,
                                         t0=t[first] - scene.start)
                    chunk[inside] = local[: int(inside.sum())]
            f.write(chunk.astype("<f4").tobytes())


def _frame_chunks(scenes: list[Scene], width: int, height: int, fps: float, seconds: float):
    """Yield uint8 frames one at a time, so a long HD clip never sits in memory; a frame whose
    object did not move (still clips) is reused rather than rendered again."""
    last_key, last_frame = None, None
    for i in range(int(round(seconds * fps))):
        t = i / fps
        scene = _scene_at(scenes, t)
        x, y, scale = (float(v[0]) for v in object_track(scene.spec, np.array([t - scene.start])))
        key = (scene.spec, x, y, scale)
        if key != last_key:
            last_key = key
            last_frame = render_frames(scene.spec, width, height, np.array([t - scene.start]))[0]
        yield last_frame


def write_clip(scenes: list[Scene], out: str, width: int, height: int, fps: float,
               seconds: float, sample_rate: int = 44100) -> bool:
    """Encode scenes to an H.264/AAC MP4; no audio stream when every scene is silent.

    Returns whether an audio stream was written.
    """
    if width % 2 or height % 2:
        raise ValueError(f"yuv420p needs even dimensions, got {width}x{height}")
    has_audio = any(not s.spec.silent for s in scenes)
    with tempfile.TemporaryDirectory(prefix="montage-corpus-") as tmp:
        cmd = ["ffmpeg", "-nostdin", "-y", "-loglevel", "error",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps),
               "-i", "pipe:0"]
        if has_audio:
            audio_path = os.path.join(tmp, "audio.f32")
            _write_audio(scenes, audio_path, sample_rate, seconds)
            cmd += ["-f", "f32le", "-ar", str(sample_rate), "-ac", "1", "-i", audio_path,
                    "-c:a", "aac", "-b:a", "96k"]
        cmd += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
                "-movflags", "+faststart", out]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
        try:
            for frame in _frame_chunks(scenes, width, height, fps, seconds):
                proc.stdin.write(frame.tobytes())
        finally:
            proc.stdin.close()
            code = proc.wait()
        if code != 0:
            raise RuntimeError(f"ffmpeg failed with exit code {code} writing {out}")
    return has_audio


# ----------------------------------------------------------------------------- CLI

def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size must look like 256x256, got {text!r}")
    return w, h


def _apply_overrides(spec: ClipSpec, sets: list[str]) -> ClipSpec:
    changes: dict = {}
    for item in sets:
        name, _, value = item.partition("=")
        if name == "color":
            name = "colour"
        if name == "silent":
            changes[name] = value.lower() in ("1", "true", "yes")
        elif name == "seed":
            changes[name] = int(value)
        elif name in ATTRIBUTES and value in ATTRIBUTES[name]:
            changes[name] = value
        else:
            raise SystemExit(f"--set {item!r}: unknown attribute or value; attributes: {ATTRIBUTES}")
    return dataclasses.replace(spec, **changes)


def _spec_for(seed: int, split: str, sets: list[str], silent: bool) -> ClipSpec:
    spec = _apply_overrides(sample_specs(1, split, seed)[0], sets)
    return dataclasses.replace(spec, silent=True) if silent else spec


def _caption_for(spec: ClipSpec) -> str:
    return caption(spec, np.random.default_rng([spec.seed, 97]))


def _build_scenes(args) -> list[Scene]:
    specs = [_spec_for(args.seed, args.split, args.set, args.silent)]
    specs += [_spec_for(s, args.split, [], args.silent) for s in args.scene_seed]
    lengths = args.scene_seconds or ([args.seconds / len(specs)] if len(specs) > 1 else [])
    scenes, start = [], 0.0
    for i, spec in enumerate(specs):
        last = i == len(specs) - 1
        length = args.seconds - start if last else lengths[min(i, len(lengths) - 1)]
        end = min(args.seconds, start + length)
        scenes.append(Scene(spec, start, end))
        start = end
    return scenes


def _cmd_clip(args) -> None:
    width, height = args.size
    scenes = _build_scenes(args)
    has_audio = write_clip(scenes, args.out, width, height, args.fps, args.seconds, args.sample_rate)
    first = scenes[0].spec
    print(json.dumps({
        "out": args.out, "seconds": args.seconds, "fps": args.fps, "width": width, "height": height,
        "audio": has_audio, "spec": first.to_dict(), "caption": _caption_for(first),
        "heldout": is_heldout(first),
        "scenes": [{"start": s.start, "end": s.end, "spec": s.spec.to_dict(),
                    "caption": _caption_for(s.spec)} for s in scenes],
    }))


def _cmd_caption(args) -> None:
    spec = _spec_for(args.seed, args.split, args.set, False)
    print(json.dumps({"spec": spec.to_dict(), "caption": _caption_for(spec), "heldout": is_heldout(spec)}))


def _cmd_sample(args) -> None:
    specs = sample_specs(args.n, args.split, args.seed)
    lines = [json.dumps({"spec": s.to_dict(), "caption": _caption_for(s)}) for s in specs]
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")
    else:
        print("\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="montage_encoders.corpus", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    clip = sub.add_parser("clip", help="render one clip (or spliced scenes) to an MP4")
    clip.add_argument("--out", required=True)
    clip.add_argument("--seconds", type=float, default=4.0)
    clip.add_argument("--size", type=_parse_size, default=(256, 256), help="WxH, even numbers")
    clip.add_argument("--fps", type=float, default=25.0)
    clip.add_argument("--sample-rate", type=int, default=44100)
    clip.add_argument("--silent", action="store_true", help="no audio stream at all")
    clip.add_argument("--scene-seed", type=int, action="append", default=[],
                      help="append a scene sampled with this seed (repeatable)")
    clip.add_argument("--scene-seconds", type=float, action="append", default=[],
                      help="length of each scene but the last (once = same for all); default: equal")
    for p in (clip, sub.add_parser("caption", help="print a spec and its caption")):
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--split", choices=("train", "test"), default="train")
        p.add_argument("--set", action="append", default=[], help="attribute=value override")
    sample = sub.add_parser("sample", help="write n specs + captions as JSON lines")
    sample.add_argument("--n", type=int, required=True)
    sample.add_argument("--split", choices=("train", "test"), default="train")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out")
    args = parser.parse_args(argv)
    {"clip": _cmd_clip, "caption": _cmd_caption, "sample": _cmd_sample}[args.command](args)


if __name__ == "__main__":
    main(sys.argv[1:])
