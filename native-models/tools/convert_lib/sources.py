"""Loading the torch modules to convert, offline: from a diffusers folder (`from_pretrained`) or from a
single-file SD 1.x/2.x checkpoint (`StableDiffusionPipeline.from_single_file`).

Offline is enforced, not hoped for: HF_HUB_OFFLINE=1 is set before diffusers is imported (any hub call
fails at once), every load passes `local_files_only=True`, and a single file is loaded with
`config=<local diffusers folder>`. Without `config`, diffusers 0.42.1 `from_single_file` looks the
architecture up on the hub (`fetch_diffusers_config` → a repo id → `_download_diffusers_model_config_from_hub`,
and with `local_files_only=True` and no cache it *overrides* that to False and downloads anyway; see
diffusers/loaders/single_file.py). With a local folder it reads model_index.json, <part>/config.json,
tokenizer/ and scheduler/ from there and takes every weight from the checkpoint. Without --config, presets.py writes that folder for the SD 1.x/2.x variant the
weights' shapes reveal.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

# torch and diffusers are imported where they are used, so a usage error is reported in a blink.

ONNX_PIPELINE_CLASSES = {"OnnxStableDiffusionPipeline", "OnnxStableDiffusionInpaintPipeline", "ORTStableDiffusionPipeline"}
# Keys that tell an LDM (CompVis / A1111) checkpoint's parts apart.
LDM_UNET_CONV_IN = "model.diffusion_model.input_blocks.0.0.weight"
LDM_SD1_TEXT_KEY = "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight"
LDM_SD2_TEXT_KEY = "cond_stage_model.model.positional_embedding"
SDXL_KEY = "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight"
# A sane bound for the JSON header (real SD checkpoints: ~100-200 kB for ~1,100 tensors).
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024


class ConversionError(Exception):
    """A problem with the input: convert.py prints it as one line ("error: ...") and exits with status 2."""


@dataclass
class SourceModel:
    text_encoder: object  # transformers CLIPTextModel
    tokenizer: object  # transformers CLIPTokenizer
    unet: object  # diffusers UNet2DConditionModel
    vae: object  # diffusers AutoencoderKL
    scheduler: object
    pipeline_class: str
    # A folder whose tokenizer/ may hold vocab.json + merges.txt to copy verbatim.
    tokenizer_dir: Path | None


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConversionError(f"{path} is missing")
    except json.JSONDecodeError as err:
        raise ConversionError(f"{path} is not valid JSON ({err})")


def load_diffusers_folder(folder: Path) -> SourceModel:
    index = _read_json(folder / "model_index.json")
    class_name = str(index.get("_class_name", ""))
    if class_name in ONNX_PIPELINE_CLASSES or (folder / "unet" / "model.onnx").exists():
        raise ConversionError(f"{folder} is already an ONNX model folder: import it directly, no conversion needed")
    if "unet" not in index or "vae" not in index or "text_encoder" not in index:
        raise ConversionError(f"{folder}/model_index.json names no unet, vae and text_encoder: not a Stable Diffusion pipeline")
    import torch
    from diffusers import DiffusionPipeline

    try:
        pipe = DiffusionPipeline.from_pretrained(folder, local_files_only=True, safety_checker=None, torch_dtype=torch.float32)
    except (OSError, ValueError) as err:
        raise ConversionError(f"could not load the diffusers folder {folder}: {err}")
    return SourceModel(
        text_encoder=pipe.text_encoder,
        tokenizer=pipe.tokenizer,
        unet=pipe.unet,
        vae=pipe.vae,
        scheduler=pipe.scheduler,
        pipeline_class=class_name or type(pipe).__name__,
        tokenizer_dir=folder / "tokenizer",
    )


def read_safetensors_header(checkpoint: Path) -> dict[str, list[int]]:
    """Tensor name -> shape, from the file's JSON header (8-byte little-endian length, then JSON): no
    weights are read and no framework is needed."""
    try:
        with checkpoint.open("rb") as f:
            length = int.from_bytes(f.read(8), "little")
            if not 2 <= length <= MAX_SAFETENSORS_HEADER:
                raise ValueError(f"header length {length}")
            header = json.loads(f.read(length))
        return {k: list(v["shape"]) for k, v in header.items() if k != "__metadata__"}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConversionError(f"{checkpoint} is not a readable .safetensors file ({err})")


def check_single_file(checkpoint: Path, shapes: dict[str, list[int]]) -> None:
    if SDXL_KEY in shapes:
        raise ConversionError(f"{checkpoint} is an SDXL checkpoint; only SD 1.x and 2.x are supported")
    if LDM_UNET_CONV_IN not in shapes:
        raise ConversionError(f"{checkpoint} has no {LDM_UNET_CONV_IN}: not a single-file Stable Diffusion checkpoint")
    if LDM_SD1_TEXT_KEY not in shapes and LDM_SD2_TEXT_KEY not in shapes:
        raise ConversionError(f"{checkpoint} has no CLIP text encoder (cond_stage_model.*): not an SD 1.x/2.x checkpoint")


def plan_single_file(checkpoint: Path, config: Path | None, prediction_type: str | None, work_dir: Path) -> tuple[Path, str, str | None]:
    """(config folder to load with, what it is: "--config" or a preset name, a note or None)."""
    shapes = read_safetensors_header(checkpoint)
    check_single_file(checkpoint, shapes)
    if config is not None:
        for rel in ("model_index.json", "unet/config.json", "vae/config.json", "text_encoder/config.json", "scheduler/scheduler_config.json"):
            if not (config / rel).is_file():
                raise ConversionError(f"--config {config}: {rel} is missing")
        unet_config = _read_json(config / "unet" / "config.json")
        channels = shapes[LDM_UNET_CONV_IN][1]
        if unet_config.get("in_channels") != channels:
            raise ConversionError(
                f"the checkpoint's U-Net takes {channels} input channels but {config}/unet/config.json says "
                f"{unet_config.get('in_channels')}: use a config folder of the same kind (inpainting models have 9)"
            )
        return config, "--config", None
    from .presets import detect_preset, write_preset_config

    try:
        preset, note = detect_preset(shapes, prediction_type)
    except ValueError as err:
        raise ConversionError(
            f"{checkpoint.name}: {err}. For other architectures pass --config DIR: a diffusers-format folder of the "
            "same architecture (model_index.json, unet/config.json, vae/config.json, text_encoder/config.json, "
            "tokenizer/, scheduler/; its weights, if any, are not used)"
        )
    return write_preset_config(preset, work_dir / preset), preset, note


def load_single_file(checkpoint: Path, config: Path) -> SourceModel:
    """Loads with `config` (a diffusers-format config folder, e.g. from plan_single_file)."""
    import torch
    from diffusers import StableDiffusionPipeline
    from diffusers.loaders.single_file_utils import SingleFileComponentError

    try:
        pipe = StableDiffusionPipeline.from_single_file(
            checkpoint.as_posix(),
            config=config.as_posix(),
            local_files_only=True,
            safety_checker=None,
            torch_dtype=torch.float32,
        )
    except (OSError, ValueError, KeyError, RuntimeError, SingleFileComponentError) as err:
        raise ConversionError(f"could not load {checkpoint} with the configs in {config}: {err}")
    return SourceModel(
        text_encoder=pipe.text_encoder,
        tokenizer=pipe.tokenizer,
        unet=pipe.unet,
        vae=pipe.vae,
        scheduler=pipe.scheduler,
        pipeline_class=str(_read_json(config / "model_index.json").get("_class_name", "StableDiffusionPipeline")),
        tokenizer_dir=config / "tokenizer",
    )
