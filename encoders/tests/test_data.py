"""Data helpers: mirroring a clip swaps its horizontal motion and nothing else."""
import dataclasses

from montage_encoders import corpus
from montage_encoders.data import attribute_words, mirrored


def test_mirrored_swaps_left_and_right_only():
    spec = corpus.sample_specs(1, "train", 3)[0]
    for motion, expected in (("left", "right"), ("right", "left"), ("up", "up"), ("still", "still")):
        m = mirrored(dataclasses.replace(spec, motion=motion))
        assert m.motion == expected
        assert dataclasses.replace(m, motion=spec.motion) == spec


def test_attribute_words_cover_every_attribute_value():
    words = set(attribute_words())
    assert all(v in words for values in corpus.ATTRIBUTES.values() for v in values)
