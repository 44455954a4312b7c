"""Montage encoders: procedural corpus, towers, contrastive trainer, ONNX export."""
