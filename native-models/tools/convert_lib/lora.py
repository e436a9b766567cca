"""Bake LoRAs into a model before export (`convert.py --lora FILE:WEIGHT`, repeatable): diffusers loads each
file (kohya-ss, PEFT/diffusers and LoCon formats, its own key conversion) and fuses it at its weight into the
U-Net and text encoder (`fuse_lora(lora_scale=weight)`), the same W' = W + weight·alpha/rank·up·down the
studio applies at run time.
"""

from __future__ import annotations

from pathlib import Path

from .sources import ConversionError, SourceModel


def parse_lora_arg(value: str) -> tuple[Path, float]:
    """`FILE:WEIGHT` or `FILE` (weight 1); the weight is after the last colon, so Windows paths work."""
    path, sep, weight = value.rpartition(":")
    if sep and path and not weight.startswith(("/", "\\")):
        try:
            return Path(path).resolve(), float(weight)
        except ValueError:
            pass
    return Path(value).resolve(), 1.0


def fuse_loras(model: SourceModel, loras: list[tuple[Path, float]]) -> list[dict]:
    import peft
    import transformers.integrations.peft as transformers_peft
    from diffusers import StableDiffusionPipeline

    if model.sdxl:
        raise ConversionError("--lora bakes LoRAs into SD 1.x/2.x models only; for SDXL use <lora:name:weight> in the prompt")
    # transformers 5.24 asks for peft >= 0.22.0 (not on PyPI; 0.21.2 pinned), whose methods it uses exist in 0.21.
    transformers_peft.MIN_PEFT_VERSION = peft.__version__
    pipe = StableDiffusionPipeline(
        vae=model.vae,
        text_encoder=model.text_encoder,
        tokenizer=model.tokenizer,
        unet=model.unet,
        scheduler=model.scheduler,
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )
    fused = []
    for i, (path, weight) in enumerate(loras):
        if not path.is_file():
            raise ConversionError(f"--lora {path}: file not found")
        if path.suffix.lower() != ".safetensors":
            raise ConversionError(f"--lora {path.name}: only .safetensors LoRA files are accepted")
        try:
            pipe.load_lora_weights(path.parent.as_posix(), weight_name=path.name, adapter_name=f"baked{i}")
        except Exception as err:  # diffusers raises ValueError/KeyError/RuntimeError for files it can't place
            raise ConversionError(f"--lora {path.name}: diffusers could not load it ({err})") from err
        pipe.fuse_lora(lora_scale=weight, adapter_names=[f"baked{i}"])
        pipe.unload_lora_weights()  # keeps the fused weights
        fused.append({"file": path.as_posix(), "weight": weight})
    return fused
