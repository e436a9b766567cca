"""The six fixture folders: which real export each imitates, and how it is written."""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from diffusers import (
    DDIMScheduler,
    LatentConsistencyModelPipeline,
    LCMScheduler,
    OnnxRuntimeModel,
    OnnxStableDiffusionPipeline,
    PNDMScheduler,
    StableDiffusionPipeline,
)
from transformers import CLIPTokenizer

from .exporters import (
    ONNX_EXTERNAL_WEIGHTS_NAME,
    ONNX_WEIGHTS_NAME,
    OPTIMUM_NEW,
    OPTIMUM_NEW_OPSET,
    OPTIMUM_OLD,
    OPTIMUM_OLD_OPSET,
    export_diffusers_script,
    export_optimum,
)
from .mixed_precision import convert_model_file_to_fp16
from .onnx_names import compact_internal_names
from .tiny_models import ModelSpec, TextEncoderSpec, TinyModels, UNetSpec, VaeSpec, build_models
from .tokenizer_files import EOS_TOKEN, SD2_PAD_TOKEN, TinyVocabulary, write_tokenizer_folder

SUBMODELS = ("text_encoder", "unet", "vae_encoder", "vae_decoder")

# runwayml/stable-diffusion-v1-5 scheduler/scheduler_config.json, verbatim (key order included).
# Written as is (not re-saved by diffusers), so keys such as prediction_type and timestep_spacing are
# absent and the class defaults apply, as with real SD 1.5 folders.
SD15_SCHEDULER_CONFIG = {
    "_class_name": "PNDMScheduler",
    "_diffusers_version": "0.6.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
    "clip_sample": False,
}
# stabilityai/stable-diffusion-2-1 (768-v) scheduler config: DDIM, v-prediction.
SD2_V_SCHEDULER_CONFIG = {
    "_class_name": "DDIMScheduler",
    "_diffusers_version": "0.8.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}
# SimianLuo/LCM_Dreamshaper_v7 scheduler config.
LCM_SCHEDULER_CONFIG = {
    "_class_name": "LCMScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "clip_sample_range": 1.0,
    "dynamic_thresholding_ratio": 0.995,
    "num_train_timesteps": 1000,
    "original_inference_steps": 50,
    "prediction_type": "epsilon",
    "rescale_betas_zero_snr": False,
    "sample_max_value": 1.0,
    "set_alpha_to_one": True,
    "steps_offset": 1,
    "thresholding": False,
    "timestep_scaling": 10.0,
    "timestep_spacing": "leading",
    "trained_betas": None,
}

# Non-SD scaling factor so that an engine hard-coding 0.18215 fails (SDXL's value).
OPTIMUM_VAE_SCALING_FACTOR = 0.13025
LCM_TIME_COND_PROJ_DIM = 24  # real LCM-SD1.5 uses 256; any width the text/UNet sizes don't share


@dataclass
class BuiltFolder:
    name: str
    root: Path
    models: TinyModels
    pipeline_class: str


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _compact_names_in_place(root: Path) -> None:
    """Rename internals of the freshly exported models and store each as one file; see onnx_names.py."""
    for sub in SUBMODELS:
        path = root / sub / ONNX_WEIGHTS_NAME
        model = onnx.load(path.as_posix())
        for extra in [p for p in path.parent.iterdir() if p.name != ONNX_WEIGHTS_NAME]:
            extra.unlink()
        onnx.save_model(compact_internal_names(model), path.as_posix())


def _dummy_prompt_ids(tokenizer: CLIPTokenizer) -> torch.Tensor:
    return tokenizer(
        "A sample prompt",
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids


def _onnx_model(folder: Path) -> OnnxRuntimeModel:
    # diffusers 0.42.1 OnnxRuntimeModel._from_pretrained does kwargs.pop("provider_options") with no
    # default, so a direct call must pass it; None becomes [] and onnxruntime then rejects the list
    # length ("providers and provider_options should be the same length") and retries, so pass {}.
    return OnnxRuntimeModel.from_pretrained(folder, provider="CPUExecutionProvider", provider_options={})


def _fresh(root: Path) -> None:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)


def _diffusers_script_folder(
    name: str,
    out: Path,
    vocab: TinyVocabulary,
    spec: ModelSpec,
    scheduler_config: dict,
    verbatim_scheduler: bool,
    compact_names: bool = True,
) -> BuiltFolder:
    root = out / name
    _fresh(root)
    write_tokenizer_folder(root / "tokenizer", vocab, EOS_TOKEN)
    tokenizer = CLIPTokenizer.from_pretrained(root / "tokenizer")
    models = build_models(spec, vocab.size, vocab.bos_id, vocab.eos_id)
    torch.manual_seed(spec.seed + 10)  # the script's dummy inputs use the global RNG
    export_diffusers_script(root, models.text_encoder, models.unet, models.vae, _dummy_prompt_ids(tokenizer))
    if compact_names:
        _compact_names_in_place(root)
    _resave_external(root / "unet" / ONNX_WEIGHTS_NAME, ONNX_EXTERNAL_WEIGHTS_NAME, convert_attribute=False)

    scheduler = PNDMScheduler.from_config(scheduler_config)
    onnx_pipeline = OnnxStableDiffusionPipeline(
        vae_encoder=_onnx_model(root / "vae_encoder"),
        vae_decoder=_onnx_model(root / "vae_decoder"),
        text_encoder=_onnx_model(root / "text_encoder"),
        tokenizer=tokenizer,
        unet=_onnx_model(root / "unet"),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    # save_pretrained = save_config (model_index.json) + each component's own save; the ONNX files
    # are already in place and the tokenizer files are written above in the SD repo format.
    onnx_pipeline.save_config(root)
    if verbatim_scheduler:
        _write_json(root / "scheduler" / "scheduler_config.json", scheduler_config)
    else:
        scheduler.save_pretrained(root / "scheduler")
    return BuiltFolder(name, root, models, "OnnxStableDiffusionPipeline")


def _resave_external(path: Path, location: str, convert_attribute: bool, size_threshold: int = 1024) -> None:
    model = onnx.load(path.as_posix())
    for extra in path.parent.iterdir():
        if extra.name != ONNX_WEIGHTS_NAME:
            extra.unlink()
    onnx.save_model(
        model,
        path.as_posix(),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=location,
        convert_attribute=convert_attribute,
        size_threshold=size_threshold,
    )


def _optimum_folder(
    name: str,
    out: Path,
    vocab: TinyVocabulary,
    spec: ModelSpec,
    generation: str,
    opset: int,
    scheduler,
    pad_token: str,
    pipeline_class,
) -> BuiltFolder:
    root = out / name
    _fresh(root)
    write_tokenizer_folder(root / "tokenizer", vocab, pad_token)
    tokenizer = CLIPTokenizer.from_pretrained(root / "tokenizer")
    models = build_models(spec, vocab.size, vocab.bos_id, vocab.eos_id)
    export_optimum(
        root,
        models.text_encoder,
        models.unet,
        models.vae,
        generation,
        opset,
        torch.Generator().manual_seed(spec.seed + 10),
    )
    # optimum wrote unet/model.onnx_data; collapse, rename internals, then write it the same way again
    # (optimum: size_threshold=100, convert_attribute=True).
    _compact_names_in_place(root)
    _resave_external(root / "unet" / ONNX_WEIGHTS_NAME, "model.onnx_data", convert_attribute=True, size_threshold=100)

    # optimum sets export_model_type on the transformers config before export (utils.py); it ends up
    # in text_encoder/config.json.
    text_config = copy.deepcopy(models.text_encoder.config)
    text_config.export_model_type = "clip-text" if generation == OPTIMUM_NEW else "clip-text-model"
    text_config.architectures = ["CLIPTextModel"]  # set on any config loaded from a hub folder
    text_config.save_pretrained(root / "text_encoder")
    models.unet.save_config(root / "unet")
    models.vae.save_config(root / "vae_encoder")
    models.vae.save_config(root / "vae_decoder")
    scheduler.save_pretrained(root / "scheduler")

    torch_pipeline = pipeline_class(
        vae=models.vae,
        text_encoder=models.text_encoder,
        tokenizer=tokenizer,
        unet=models.unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )
    torch_pipeline.save_config(root)  # model_index.json of the torch pipeline, as optimum-cli writes it
    return BuiltFolder(name, root, models, pipeline_class.__name__)


def build_all(out: Path, vocab: TinyVocabulary) -> dict[str, BuiltFolder]:
    built: dict[str, BuiltFolder] = {}

    sd1_spec = ModelSpec(seed=1000)
    built["tiny-sd1"] = _diffusers_script_folder("tiny-sd1", out, vocab, sd1_spec, SD15_SCHEDULER_CONFIG, True)

    inpaint_spec = ModelSpec(seed=2000, unet=UNetSpec(**{**UNetSpec().__dict__, "in_channels": 9}))
    built["tiny-sd1-inpaint"] = _diffusers_script_folder(
        "tiny-sd1-inpaint", out, vocab, inpaint_spec, SD15_SCHEDULER_CONFIG, False
    )

    built["tiny-sd1-fp16"] = _mixed_precision_folder(out, built["tiny-sd1"])

    built["tiny-optimum"] = _optimum_folder(
        "tiny-optimum",
        out,
        vocab,
        ModelSpec(seed=3000, vae=VaeSpec(scaling_factor=OPTIMUM_VAE_SCALING_FACTOR)),
        OPTIMUM_NEW,
        OPTIMUM_NEW_OPSET,
        PNDMScheduler.from_config(SD15_SCHEDULER_CONFIG),
        EOS_TOKEN,
        StableDiffusionPipeline,
    )

    sd2_spec = ModelSpec(
        seed=4000,
        text=TextEncoderSpec(hidden_size=48, intermediate_size=96, num_heads=4, hidden_act="gelu"),
        unet=UNetSpec(
            attention_head_dim=(2, 4),
            use_linear_projection=True,
            upcast_attention=True,
        ),
    )
    built["tiny-sd2-v"] = _optimum_folder(
        "tiny-sd2-v",
        out,
        vocab,
        sd2_spec,
        OPTIMUM_OLD,
        OPTIMUM_OLD_OPSET,
        DDIMScheduler.from_config(SD2_V_SCHEDULER_CONFIG),
        SD2_PAD_TOKEN,
        StableDiffusionPipeline,
    )

    lcm_spec = ModelSpec(seed=5000, unet=UNetSpec(**{**UNetSpec().__dict__, "time_cond_proj_dim": LCM_TIME_COND_PROJ_DIM}))
    built["tiny-lcm"] = _optimum_folder(
        "tiny-lcm",
        out,
        vocab,
        lcm_spec,
        OPTIMUM_NEW,
        OPTIMUM_NEW_OPSET,
        LCMScheduler.from_config(LCM_SCHEDULER_CONFIG),
        EOS_TOKEN,
        LatentConsistencyModelPipeline,
    )
    return built


def _mixed_precision_folder(out: Path, source: BuiltFolder) -> BuiltFolder:
    """Olive / ORT optimize_pipeline --float16 style: same layout and weights as tiny-sd1, with
    text_encoder, unet and vae_encoder converted to fp16 (fp16 graph inputs and outputs) and the
    vae_decoder kept fp32 (ORT keeps the SDXL decoder fp32 against NaN; an older optimize_pipeline
    kept every vae_decoder fp32)."""
    root = out / "tiny-sd1-fp16"
    _fresh(root)
    for entry in ("tokenizer", "scheduler", "vae_decoder"):
        shutil.copytree(source.root / entry, root / entry)
    shutil.copy(source.root / "model_index.json", root / "model_index.json")
    for sub, external in (("text_encoder", None), ("unet", ONNX_EXTERNAL_WEIGHTS_NAME), ("vae_encoder", None)):
        convert_model_file_to_fp16(source.root / sub / ONNX_WEIGHTS_NAME, root / sub / ONNX_WEIGHTS_NAME, external)
    return BuiltFolder("tiny-sd1-fp16", root, source.models, "OnnxStableDiffusionPipeline")

