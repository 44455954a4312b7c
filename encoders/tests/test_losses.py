"""The contrastive loss on tiny tensors with answers computed by hand."""
import math

import pytest
import torch

from montage_encoders.losses import ContrastiveLoss, info_nce


def test_info_nce_identity_pair_by_hand():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # logits = I; each row: -log(e / (e + 1)) = log(1 + e^-1); both directions equal
    expected = math.log(1 + math.exp(-1))
    assert float(info_nce(a, a, torch.tensor(1.0))) == pytest.approx(expected, abs=1e-6)


def test_info_nce_asymmetric_by_hand():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    # logits = a b^T = [[1, 1], [0, 0]] (scale 1)
    # rows (a->b): row0 -log(e/(2e)) = log 2; row1 target col1: -log(1/2) = log 2 -> mean log 2
    # cols (b->a): col0 = [1, 0] target 0: log(1+e^-1); col1 = [1, 0] target 1: log(1+e)
    rows = math.log(2)
    cols = 0.5 * (math.log(1 + math.exp(-1)) + math.log(1 + math.e))
    assert float(info_nce(a, b, torch.tensor(1.0))) == pytest.approx(0.5 * (rows + cols), abs=1e-6)


def test_missing_modality_is_masked_not_zero_filled():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    b = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])  # third sample: no audio (zeros)
    valid = torch.tensor([True, True, False])
    masked = float(info_nce(a, b, torch.tensor(1.0), valid))
    assert masked == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)  # = the 2-sample answer
    zero_filled = float(info_nce(a, b, torch.tensor(1.0)))
    assert abs(zero_filled - masked) > 1e-3  # filling with zeros would have changed the loss


def test_fewer_than_two_valid_samples_gives_nothing():
    a = torch.eye(3)
    assert info_nce(a, a, torch.tensor(1.0), torch.tensor([True, False, False])) is None


def test_weighted_total_and_temperature():
    loss = ContrastiveLoss({"video-audio": 0.4, "video-text": 0.3, "audio-text": 0.3})
    assert float(loss.scale()) == pytest.approx(1 / 0.07, rel=1e-5)
    with torch.no_grad():
        loss.log_scale.fill_(0.0)  # scale 1
    e = torch.eye(2)
    swapped = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    emb = {"video": e, "audio": e, "text": swapped}
    present = {"audio": torch.tensor([True, True])}
    total, parts = loss(emb, present)
    same = math.log(1 + math.exp(-1))  # aligned pair
    wrong = math.log(1 + math.e)  # every positive scores 0 against a negative scoring 1
    assert parts["video-audio"] == pytest.approx(same, abs=1e-6)
    assert parts["video-text"] == pytest.approx(wrong, abs=1e-6)
    assert float(total) == pytest.approx(0.4 * same + 0.3 * wrong + 0.3 * wrong, abs=1e-6)
    # no clip has audio: both audio pairs drop out, only video-text remains
    total, parts = loss(emb, {"audio": torch.tensor([False, False])})
    assert set(parts) == {"video-text"}
    assert float(total) == pytest.approx(0.3 * wrong, abs=1e-6)


def test_logit_scale_is_clamped():
    loss = ContrastiveLoss({"video-text": 1.0}, max_scale=100.0)
    with torch.no_grad():
        loss.log_scale.fill_(10.0)
    assert float(loss.scale()) == pytest.approx(100.0, rel=1e-5)
