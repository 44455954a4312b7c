"""Behaviour side of Montage: user vectors from recent items, trained with Barlow Twins + next item.

data.py       adapters (generic events + item metadata, MovieLens-100K) and the evaluation splits
content.py    item content vectors: a catalogue tokenizer + the text tower fitted on the metadata
augment.py    the three views (mask, crop, reorder)
model.py      sequence encoder (user tower), behaviour tower, Barlow Twins projector
losses.py     Barlow Twins and sampled-softmax next-item losses
train.py      training loops (self-supervised + next item, from-scratch classifier)
evaluate.py   the one evaluation command -> bench/results/users.json
export.py     user.onnx / behaviour.onnx into a model generation
"""
