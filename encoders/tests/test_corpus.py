"""Procedural corpus: determinism, held-out split, captions, rendering and the ffmpeg CLI."""
import dataclasses
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

ENCODERS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ENCODERS_DIR)

from montage_encoders.corpus import (ATTRIBUTES, WORDS, ClipSpec, caption, is_heldout, render_audio,
                                     render_frames, sample_specs, segment_times)  # noqa: E402


def _spec(**changes) -> ClipSpec:
    base = ClipSpec(shape="circle", colour="red", size="small", motion="still", background="black",
                    waveform="sine", pitch="high", rhythm="steady", noise="none", silent=False, seed=5)
    return dataclasses.replace(base, **changes)


def _centroid(frame: np.ndarray) -> tuple[float, float]:
    # The object is the only strongly red region: red channel high, green low.
    mask = (frame[..., 0].astype(int) - frame[..., 1].astype(int)) > 100
    assert mask.sum() > 10, "object not found in frame"
    ys, xs = np.nonzero(mask)
    return float(xs.mean()), float(ys.mean())


def test_sampling_is_deterministic_per_seed():
    a, b = sample_specs(50, "train", 7), sample_specs(50, "train", 7)
    assert a == b
    assert a != sample_specs(50, "train", 8)
    assert sample_specs(20, "train", 7) == a[:20]
    spec = a[3]
    times = segment_times(0.5, 2.0, 4)
    assert np.array_equal(render_frames(spec, 64, 48, times), render_frames(spec, 64, 48, times))
    assert np.array_equal(render_audio(spec, 16000, 1.0, 0.3), render_audio(spec, 16000, 1.0, 0.3))


def test_heldout_combinations_never_in_train_and_every_value_is_trained():
    train = sample_specs(3000, "train", 0)
    test = sample_specs(600, "test", 0)
    assert not any(is_heldout(s) for s in train)
    assert all(is_heldout(s) for s in test)
    assert len({s.key() for s in test}) == 600, "test clips must be distinct"
    train_pictures = {(s.shape, s.colour, s.motion, s.background) for s in train}
    assert not train_pictures & {(s.shape, s.colour, s.motion, s.background) for s in test}
    for name, values in ATTRIBUTES.items():
        seen = {getattr(s, name) for s in train}
        assert seen == set(values), f"{name}: {set(values) - seen} never in train"
    assert 0.05 < np.mean([s.silent for s in train]) < 0.15


def test_sound_is_coupled_to_picture_only_partly():
    train = sample_specs(3000, "train", 1)
    small = [s.pitch == "high" for s in train if s.size == "small"]
    assert 0.7 < np.mean(small) < 0.95


def test_spec_round_trips_through_dict():
    spec = sample_specs(1, "test", 4)[0]
    assert ClipSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    with pytest.raises(ValueError):
        ClipSpec.from_dict({**spec.to_dict(), "shape": "blob"})


def _mentions(text: str, attribute: str, value: str) -> bool:
    return any(word and word in text for word in WORDS[attribute][value])


def test_caption_mentions_picture_and_sound_and_varies():
    rng = np.random.default_rng(0)
    for spec in sample_specs(200, "train", 2):
        text = caption(spec, rng)
        for name in ("size", "colour", "shape", "motion", "background"):
            assert _mentions(text, name, getattr(spec, name)), (name, text)
        if spec.silent:
            assert "silent" in text or "no sound" in text or "no audio" in text, text
        else:
            for name in ("waveform", "pitch", "rhythm"):
                assert _mentions(text, name, getattr(spec, name)), (name, text)
            if spec.noise != "none":
                assert _mentions(text, "noise", spec.noise), text
    spec = sample_specs(1, "train", 3)[0]
    assert len({caption(spec, rng) for _ in range(20)}) > 5


def test_silent_clip_has_zero_audio_and_sound_is_in_range():
    assert not render_audio(_spec(silent=True), 16000, 2.0).any()
    for spec in sample_specs(40, "train", 4):
        audio = render_audio(dataclasses.replace(spec, silent=False), 16000, 2.0, t0=1.0)
        assert audio.dtype == np.float32 and audio.shape == (32000,)
        assert np.abs(audio).max() <= 1.0 and audio.std() > 0.05


def test_audio_chunks_join_exactly():
    spec = _spec(rhythm="rising", noise="pink", waveform="sawtooth")
    whole = render_audio(spec, 16000, 3.0, t0=0.5)
    parts = np.concatenate([render_audio(spec, 16000, 1.25, 0.5), render_audio(spec, 16000, 1.75, 1.75)])
    assert np.array_equal(whole, parts)


@pytest.mark.parametrize("motion,axis,sign", [("left", 0, -1), ("right", 0, 1), ("up", 1, -1), ("down", 1, 1)])
def test_small_object_moves_the_right_way_within_a_segment(motion, axis, sign):
    spec = _spec(motion=motion, background="grey")
    frames = render_frames(spec, 96, 96, segment_times(0.0, 2.0, 4))
    positions = [_centroid(f)[axis] for f in frames]
    steps = np.diff(positions) * sign
    assert (steps > 4).all(), f"{motion}: centroid path {positions}"  # pixels per frame at 96 px


def test_still_object_stays_and_frames_have_contract_shape():
    frames = render_frames(_spec(), 80, 60, np.array([0.1, 1.0, 1.9]))
    assert frames.shape == (3, 60, 80, 3) and frames.dtype == np.uint8
    c = [_centroid(f) for f in frames]
    assert np.allclose(c, c[0], atol=0.01)


def test_textured_backgrounds_do_not_hide_the_object():
    for bg in ATTRIBUTES["background"]:
        frame = render_frames(_spec(background=bg, size="medium"), 96, 96, np.array([0.0]))[0]
        _centroid(frame)


def _ffprobe(path: str) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", path],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def _cli(*args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": ENCODERS_DIR}
    out = subprocess.run([sys.executable, "-m", "montage_encoders.corpus", *args], check=True,
                         capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
def test_cli_writes_a_probeable_mp4(tmp_path):
    out = str(tmp_path / "clip.mp4")
    info = _cli("clip", "--out", out, "--seed", "3", "--seconds", "3", "--size", "128x96",
                "--set", "shape=star", "--set", "colour=cyan", "--set", "silent=false",
                "--scene-seed", "9", "--scene-seconds", "1.5")
    assert info["spec"]["shape"] == "star" and info["audio"] is True
    assert [(s["start"], s["end"]) for s in info["scenes"]] == [(0.0, 1.5), (1.5, 3.0)]
    probe = _ffprobe(out)
    kinds = {s["codec_type"]: s for s in probe["streams"]}
    assert kinds["video"]["codec_name"] == "h264" and kinds["video"]["pix_fmt"] == "yuv420p"
    assert (kinds["video"]["width"], kinds["video"]["height"]) == (128, 96)
    assert kinds["audio"]["codec_name"] == "aac"
    assert abs(float(probe["format"]["duration"]) - 3.0) < 0.15

    silent = str(tmp_path / "silent.mp4")
    _cli("clip", "--out", silent, "--seed", "3", "--seconds", "2", "--size", "64x64", "--silent")
    probe = _ffprobe(silent)
    assert [s["codec_type"] for s in probe["streams"]] == ["video"]
    assert abs(float(probe["format"]["duration"]) - 2.0) < 0.15


def test_cli_caption_and_sample(tmp_path):
    info = _cli("caption", "--seed", "4", "--split", "test")
    assert info["heldout"] is True and info["caption"]
    path = tmp_path / "test.jsonl"
    _cli_out = subprocess.run([sys.executable, "-m", "montage_encoders.corpus", "sample", "--n", "30",
                               "--split", "test", "--out", str(path)], check=True,
                              env={**os.environ, "PYTHONPATH": ENCODERS_DIR})
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 30 and all(is_heldout(ClipSpec.from_dict(r["spec"])) for r in rows)


def test_heldout_synonyms_never_appear_in_training_captions():
    """The paraphrase evaluation's words (HELDOUT_WORDS) are never produced by the caption generators
    the trainer uses, nor listed in TRAIN_WORDS; every paraphrase uses them."""
    from montage_encoders import corpus
    from montage_encoders.tokenizer import bert_normalize, bert_pre_tokenize

    def words(text):
        return set(bert_pre_tokenize(bert_normalize(text)))

    held = set(corpus.HELDOUT_KEYWORDS)
    listed = {w for table in corpus.TRAIN_WORDS.values() for phrases in table.values() for p in phrases for w in words(p)}
    assert not held & listed, held & listed
    for attr, table in corpus.HELDOUT_WORDS.items():
        assert set(table) == set(corpus.ATTRIBUTES[attr])  # a held-out word for every value
        for phrases in table.values():
            assert all(words(p) & held for p in phrases), phrases
    specs = corpus.sample_specs(300, "train", 3)
    seen = set()
    for i, spec in enumerate(specs):
        rng = np.random.default_rng([9, i])
        for _ in range(6):
            seen |= words(corpus.varied_caption(spec, rng)) | words(corpus.caption(spec, rng))
    assert not held & seen, held & seen
    para = corpus.paraphrase_caption(specs[0], np.random.default_rng(0))
    assert len(words(para) & held) >= 4, para
