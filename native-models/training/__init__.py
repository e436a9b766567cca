"""Training, export and evaluation tooling for the bundled emoji-ldm latent diffusion model.

Run stages from native-models/ as `python -m training.<stage> --config configs/emoji-ldm.json`,
or the whole chain with `python -m training.build` (see native-models/README.md).
"""
