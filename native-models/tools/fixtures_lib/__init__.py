"""Helpers for native-models/tools/make_fixtures.py (tiny Stable Diffusion ONNX test fixtures)."""
