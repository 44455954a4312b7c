"""Fine-tuning from a served generation: its towers read back from ONNX (proven on its goldens), the held-out
split, the recall used for both generations. The whole loop (export, fine-tune, load) is test/e2e/finetune.test.ts."""
import json
import os

import numpy as np
import pytest
import torch

from montage_encoders.behaviour.model import BehaviourConfig, SequenceModel
from montage_encoders.finetune import heldout_split, load_base_text, recall_at
from montage_encoders.onnx_weights import load_tower, onnx_state

HERE = os.path.dirname(os.path.abspath(__file__))
GENERATIONS = os.path.join(HERE, "..", "generations")


def served() -> str:
    name = open(os.path.join(GENERATIONS, "DEFAULT")).read().strip()
    return os.path.join(GENERATIONS, name)


def behaviour_config(gen: str) -> BehaviourConfig:
    saved = json.load(open(os.path.join(gen, "manifest.json")))["training"]["behaviour"]
    fields = BehaviourConfig.__dataclass_fields__
    return BehaviourConfig(**{k: v for k, v in saved.items() if k in fields})


def test_text_tower_read_back_from_onnx_reproduces_the_golden_outputs():
    gen = served()
    manifest = json.load(open(os.path.join(gen, "manifest.json")))
    cfg, tok, text, diff = load_base_text(gen, manifest)
    assert diff < 1e-4
    assert len(tok) == text.table_q.shape[0]


def test_user_and_behaviour_towers_read_back_and_a_wrong_architecture_is_refused():
    gen = served()
    cfg = behaviour_config(gen)
    model = SequenceModel(cfg, np.zeros((3, cfg.dim), np.float32), 3)
    assert load_tower(model.user, gen, "user") < 1e-4
    assert load_tower(model.behaviour, gen, "behaviour") < 1e-4
    wider = SequenceModel(BehaviourConfig(**{**cfg.to_dict(), "ffn": cfg.ffn * 2}), np.zeros((3, cfg.dim), np.float32), 3)
    with pytest.raises(ValueError, match="no initializer"):
        load_tower(wider.user, gen, "user")


def test_generated_initializer_names_are_matched_transposed():
    gen = served()
    cfg = behaviour_config(gen)
    tower = SequenceModel(cfg, np.zeros((3, cfg.dim), np.float32), 3).behaviour
    state, missing = onnx_state(tower, os.path.join(gen, "behaviour.onnx"))
    assert missing == []
    assert state["skip.weight"].shape == tower.skip.weight.shape  # stored as onnx::MatMul_*, transposed


def test_heldout_split_is_stable_and_grows_with_the_catalogue():
    ids = [f"v{i}" for i in range(10)]
    held = heldout_split(ids, 0.2)
    assert len(held) == 2 and held == heldout_split(list(reversed(ids)), 0.2)
    assert heldout_split(["only"], 0.2) == set()
    assert len(heldout_split(["a", "b"], 0.2)) == 1


def test_recall_at_counts_ties_against_the_query():
    g = torch.eye(3)
    q = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [1.0, 0, 0]])
    r = recall_at(q, g, torch.tensor([0, 1, 1]), ks=(1, 2, 3))
    assert r == {"r1": round(2 / 3, 4), "r2": round(2 / 3, 4), "r3": 1.0}  # the third query ranks its positive last
    tie = recall_at(torch.tensor([[1.0, 1.0, 0]]), g, torch.tensor([0]), ks=(1,))
    assert tie == {"r1": 0.0}
