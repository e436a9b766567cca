"""Conversion of diffusers folders and single-file SD 1.x/2.x checkpoints to our ONNX layout (see ../convert.py)."""
