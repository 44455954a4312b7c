"""Each augmentation keeps what it must, over many random draws and lengths."""
import numpy as np

from montage_encoders.behaviour import augment


def _seq(n):
    return np.arange(100, 100 + n), np.linspace(50.0, 0.0, n)


def test_mask_keeps_length_and_never_masks_all():
    rng = np.random.default_rng(0)
    for n in range(1, 40):
        for ratio in (0.3, 0.9, 1.0):
            items, ages = _seq(n)
            out, out_ages, hidden = augment.mask(items, ages, rng, ratio)
            assert len(out) == n and len(hidden) == n
            assert (out == items).all() and (out_ages == ages).all()
            assert hidden.sum() < n  # at least one visible item
            assert hidden.sum() == min(int(np.floor(ratio * n)), n - 1)


def test_crop_is_contiguous_and_ordered():
    rng = np.random.default_rng(1)
    for n in range(1, 40):
        items, ages = _seq(n)
        out, out_ages, hidden = augment.crop(items, ages, rng, 0.6)
        assert 1 <= len(out) <= n and not hidden.any()
        start = int(out[0] - 100)
        assert (out == items[start:start + len(out)]).all()  # one contiguous span, original order
        assert (out_ages == ages[start:start + len(out)]).all()


def test_reorder_is_a_permutation_keeping_each_items_age():
    rng = np.random.default_rng(2)
    changed = 0
    for n in range(1, 40):
        items, ages = _seq(n)
        out, out_ages, hidden = augment.reorder(items, ages, rng, 0.5)
        assert sorted(out) == sorted(items) and not hidden.any()
        assert all(out_ages[i] == ages[out[i] - 100] for i in range(n))
        moved = np.flatnonzero(out != items)
        if len(moved):
            assert moved.max() - moved.min() < int(np.ceil(0.5 * n))  # within one span
        changed += int(len(moved) > 0)
    assert changed > 20  # it does reorder


def test_random_view_never_empty():
    rng = np.random.default_rng(3)
    for n in (1, 2, 5, 50):
        for _ in range(30):
            items, ages = _seq(n)
            out, _, hidden = augment.random_view(items, ages, rng)
            assert len(out) >= 1 and (~hidden).sum() >= 1
