"""Loading the torch modules to convert, offline: from a diffusers folder (`from_pretrained`) or from a
single-file SD 1.x/2.x checkpoint (`StableDiffusionPipeline.from_single_file`) or SDXL one
(`StableDiffusionXLPipeline.from_single_file`; the refiner through the img2img pipeline, inpainting
models through the inpaint one: the class model_index.json names).

Offline is enforced, not hoped for: HF_HUB_OFFLINE=1 is set before diffusers is imported (any hub call
fails at once), every load passes `local_files_only=True`, and a single file is loaded with
`config=<local diffusers folder>`. Without `config`, diffusers 0.42.1 `from_single_file` looks the
architecture up on the hub (`fetch_diffusers_config` → a repo id → `_download_diffusers_model_config_from_hub`,
and with `local_files_only=True` and no cache it *overrides* that to False and downloads anyway; see
diffusers/loaders/single_file.py). With a local folder it reads model_index.json, <part>/config.json,
tokenizer/ and scheduler/ from there and takes every weight from the checkpoint. Without --config, presets.py
writes that folder for the SD 1.x/2.x/SDXL variant the weights' shapes reveal.

An SDXL checkpoint (sgm / A1111 / ComfyUI layout) holds `model.diffusion_model.*`, `first_stage_model.*`,
`conditioner.embedders.0.transformer.*` (CLIP ViT-L, Hugging Face names) and `conditioner.embedders.1.model.*`
(OpenCLIP ViT-bigG, open_clip names: fused in_proj, text_projection as x @ P); a refiner has only the bigG,
as `conditioner.embedders.0.model.*`.
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

ONNX_PIPELINE_CLASSES = {"OnnxStableDiffusionPipeline", "OnnxStableDiffusionInpaintPipeline", "ORTStableDiffusionPipeline",
                         "ORTStableDiffusionXLPipeline", "ORTStableDiffusionXLImg2ImgPipeline", "ORTStableDiffusionXLInpaintPipeline"}
SDXL_PIPELINE_CLASSES = {"StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline", "StableDiffusionXLInpaintPipeline"}
# Keys that tell an LDM (CompVis / A1111) checkpoint's parts apart.
LDM_UNET_CONV_IN = "model.diffusion_model.input_blocks.0.0.weight"
LDM_SD1_TEXT_KEY = "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight"
LDM_SD2_TEXT_KEY = "cond_stage_model.model.positional_embedding"
# A sane bound for the JSON header (real SD checkpoints: ~100-200 kB for ~1,100 tensors).
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024


class ConversionError(Exception):
    """A problem with the input: convert.py prints it as one line ("error: ...") and exits with status 2."""


@dataclass
class SourceModel:
    text_encoder: object | None  # transformers CLIPTextModel (None: an SDXL refiner)
    tokenizer: object | None  # transformers CLIPTokenizer
    unet: object  # diffusers UNet2DConditionModel
    vae: object  # diffusers AutoencoderKL
    scheduler: object
    pipeline_class: str
    # A folder whose tokenizer/ (and tokenizer_2/) may hold vocab.json + merges.txt to copy verbatim.
    tokenizers_root: Path | None
    # SDXL: encoder 2 (CLIPTextModelWithProjection) and its tokenizer, and the pipeline's registered config
    # (force_zeros_for_empty_prompt, requires_aesthetics_score) for model_index.json.
    text_encoder_2: object | None = None
    tokenizer_2: object | None = None
    pipeline_config: dict | None = None

    @property
    def sdxl(self) -> bool:
        return self.text_encoder_2 is not None


def _source_from_pipeline(pipe, class_name: str, tokenizers_root: Path | None) -> SourceModel:
    sdxl = getattr(pipe, "text_encoder_2", None) is not None
    config = {k: pipe.config[k] for k in ("force_zeros_for_empty_prompt", "requires_aesthetics_score") if k in pipe.config} if sdxl else None
    return SourceModel(
        text_encoder=pipe.text_encoder,
        tokenizer=pipe.tokenizer,
        unet=pipe.unet,
        vae=pipe.vae,
        scheduler=pipe.scheduler,
        pipeline_class=class_name or type(pipe).__name__,
        tokenizers_root=tokenizers_root,
        text_encoder_2=getattr(pipe, "text_encoder_2", None),
        tokenizer_2=getattr(pipe, "tokenizer_2", None),
        pipeline_config=config,
    )


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
    if "unet" not in index or "vae" not in index or ("text_encoder" not in index and "text_encoder_2" not in index):
        raise ConversionError(f"{folder}/model_index.json names no unet, vae and text_encoder: not a Stable Diffusion pipeline")
    import torch
    from diffusers import DiffusionPipeline

    try:
        pipe = DiffusionPipeline.from_pretrained(folder, local_files_only=True, safety_checker=None, torch_dtype=torch.float32)
    except (OSError, ValueError) as err:
        raise ConversionError(f"could not load the diffusers folder {folder}: {err}")
    return _source_from_pipeline(pipe, class_name, folder)


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
    from .presets import sdxl_kind

    if LDM_UNET_CONV_IN not in shapes:
        raise ConversionError(f"{checkpoint} has no {LDM_UNET_CONV_IN}: not a single-file Stable Diffusion checkpoint")
    if sdxl_kind(shapes) is None and LDM_SD1_TEXT_KEY not in shapes and LDM_SD2_TEXT_KEY not in shapes:
        raise ConversionError(
            f"{checkpoint} has no CLIP text encoder (cond_stage_model.* for SD 1.x/2.x, conditioner.embedders.* for SDXL): "
            "not a Stable Diffusion checkpoint"
        )


CONFIG_FILES = ("model_index.json", "unet/config.json", "vae/config.json", "scheduler/scheduler_config.json")


def _check_config_folder(config: Path, shapes: dict[str, list[int]], sdxl: str | None) -> None:
    """The --config folder has what the checkpoint's kind needs and its U-Net takes the same channels."""
    encoders = {None: ["text_encoder"], "base": ["text_encoder", "text_encoder_2"], "refiner": ["text_encoder_2"]}[sdxl]
    for rel in (*CONFIG_FILES, *(f"{e}/config.json" for e in encoders)):
        if not (config / rel).is_file():
            raise ConversionError(f"--config {config}: {rel} is missing")
    class_name = str(_read_json(config / "model_index.json").get("_class_name", ""))
    if (sdxl is not None) != (class_name in SDXL_PIPELINE_CLASSES):
        what = "an SDXL" if sdxl else "an SD 1.x/2.x"
        raise ConversionError(f"the checkpoint is {what} model but {config}/model_index.json names {class_name or 'no pipeline'}")
    unet_config = _read_json(config / "unet" / "config.json")
    channels = shapes[LDM_UNET_CONV_IN][1]
    if unet_config.get("in_channels") != channels:
        raise ConversionError(
            f"the checkpoint's U-Net takes {channels} input channels but {config}/unet/config.json says "
            f"{unet_config.get('in_channels')}: use a config folder of the same kind (inpainting models have 9)"
        )


def plan_single_file(checkpoint: Path, config: Path | None, prediction_type: str | None, work_dir: Path) -> tuple[Path, str, str | None]:
    """(config folder to load with, what it is: "--config" or a preset name, a note or None)."""
    from .presets import detect_preset, detect_sdxl_preset, sdxl_kind, write_preset_config

    shapes = read_safetensors_header(checkpoint)
    check_single_file(checkpoint, shapes)
    sdxl = sdxl_kind(shapes)
    if sdxl is not None and prediction_type is not None:
        raise ConversionError("--prediction-type is for SD 2.x checkpoints; SDXL predicts epsilon (use --config for anything else)")
    if config is not None:
        _check_config_folder(config, shapes, sdxl)
        return config, "--config", None
    try:
        preset, note = (detect_sdxl_preset(shapes), None) if sdxl else detect_preset(shapes, prediction_type)
    except ValueError as err:
        raise ConversionError(
            f"{checkpoint.name}: {err}. For other architectures pass --config DIR: a diffusers-format folder of the "
            "same architecture (model_index.json, unet/config.json, vae/config.json, text_encoder/config.json "
            "(and text_encoder_2/ for SDXL), tokenizer/, scheduler/; its weights, if any, are not used)"
        )
    return write_preset_config(preset, work_dir / preset), preset, note


def load_single_file(checkpoint: Path, config: Path) -> SourceModel:
    """Loads with `config` (a diffusers-format config folder, e.g. from plan_single_file), through the
    pipeline class its model_index.json names (SD or one of the SDXL ones)."""
    import diffusers
    import torch
    from diffusers.loaders.single_file_utils import SingleFileComponentError

    class_name = str(_read_json(config / "model_index.json").get("_class_name", "StableDiffusionPipeline"))
    sdxl = class_name in SDXL_PIPELINE_CLASSES
    pipeline = getattr(diffusers, class_name) if sdxl else diffusers.StableDiffusionPipeline
    extra = {"add_watermarker": False} if sdxl else {"safety_checker": None}
    try:
        pipe = pipeline.from_single_file(
            checkpoint.as_posix(),
            config=config.as_posix(),
            local_files_only=True,
            torch_dtype=torch.float32,
            **extra,
        )
    except (OSError, ValueError, KeyError, RuntimeError, SingleFileComponentError) as err:
        raise ConversionError(f"could not load {checkpoint} with the configs in {config}: {err}")
    return _source_from_pipeline(pipe, class_name, config)
