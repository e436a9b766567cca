"""Architecture configs for single-file SD 1.x / 2.x checkpoints, so a .safetensors file converts offline
without --config. A checkpoint holds weights, not its architecture; diffusers would look it up on the
hub (DIFFUSERS_DEFAULT_PIPELINE_PATHS), so the same configs are written here from these tables:

  sd15            stable-diffusion-v1-5            (CLIP ViT-L/14 text, 768 wide; 512 px; PNDM; epsilon)
  sd15-inpainting stable-diffusion-inpainting      (the same with a 9-channel U-Net)
  sd21            stabilityai/stable-diffusion-2-1 (OpenCLIP ViT-H/14 text, 1024 wide; 768 px; DDIM; v_prediction)
  sd21-base       stabilityai/stable-diffusion-2-1-base (512 px; PNDM; epsilon)
  sd2-inpainting  stabilityai/stable-diffusion-2-inpainting (512 px; 9 channels; epsilon)
  sdxl            stabilityai/stable-diffusion-xl-base-1.0 (CLIP ViT-L/14 + OpenCLIP ViT-bigG/14; 1024 px; Euler)
  sdxl-inpainting diffusers/stable-diffusion-xl-1.0-inpainting-0.1 (the same with a 9-channel U-Net)
  sdxl-refiner    stabilityai/stable-diffusion-xl-refiner-1.0 (OpenCLIP ViT-bigG/14 only; aesthetic-score time ids)

The tokenizer is CLIP's BPE (clip_tokenizer/, from openai/CLIP, MIT licence); SD 2.x pads with "!".
Which preset fits is read from the weights (U-Net input channels; cross-attention width 768 or 1024,
SDXL's 2048, or the refiner's 1280), except SD 2.x's prediction type, which weights don't reveal: 768-v is assumed, as diffusers does,
unless --prediction-type epsilon says otherwise.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

CLIP_TOKENIZER = Path(__file__).resolve().parent / "clip_tokenizer"
UNET_CONV_IN = "model.diffusion_model.input_blocks.0.0.weight"
# The first cross-attention's key projection: its input width is the text encoder's hidden size.
UNET_CROSS_ATTENTION_K = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"

_SD_UNET = {
    "_class_name": "UNet2DConditionModel",
    "act_fn": "silu",
    "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}
_SD1_UNET = {**_SD_UNET, "attention_head_dim": 8, "cross_attention_dim": 768}
_SD2_UNET = {**_SD_UNET, "attention_head_dim": [5, 10, 20, 20], "cross_attention_dim": 1024, "use_linear_projection": True}

_SD_VAE = {
    "_class_name": "AutoencoderKL",
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 3,
    "scaling_factor": 0.18215,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
}

_CLIP_TEXT = {
    "architectures": ["CLIPTextModel"],
    "attention_dropout": 0.0,
    # The original configs' ids (0/2/1), kept: with eos_token_id 2 transformers pools at the argmax id,
    # which is EOS (49407), as CLIP does.
    "bos_token_id": 0,
    "eos_token_id": 2,
    "pad_token_id": 1,
    "dropout": 0.0,
    "initializer_factor": 1.0,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 77,
    "model_type": "clip_text_model",
    "vocab_size": 49408,
}
_SD1_TEXT = {**_CLIP_TEXT, "hidden_act": "quick_gelu", "hidden_size": 768, "intermediate_size": 3072,
             "num_attention_heads": 12, "num_hidden_layers": 12, "projection_dim": 768}
# OpenCLIP ViT-H/14 as SD 2.x uses it: the penultimate layer's output, so 23 of its 24 layers.
_SD2_TEXT = {**_CLIP_TEXT, "hidden_act": "gelu", "hidden_size": 1024, "intermediate_size": 4096,
             "num_attention_heads": 16, "num_hidden_layers": 23, "projection_dim": 512}

_SCHEDULER_COMMON = {
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}
_PNDM_EPSILON = {"_class_name": "PNDMScheduler", **_SCHEDULER_COMMON, "prediction_type": "epsilon"}
_DDIM_V = {"_class_name": "DDIMScheduler", **_SCHEDULER_COMMON, "prediction_type": "v_prediction"}

# SDXL (the repos' unet/config.json; sgm sd_xl_base.yaml / sd_xl_refiner.yaml: num_head_channels 64,
# transformer_depth [0, 2, 10] / 4, adm_in_channels 2816 / 2560 = 6·256 + 1280 / 5·256 + 1280).
_SDXL_UNET_COMMON = {
    "_class_name": "UNet2DConditionModel",
    "act_fn": "silu",
    "addition_embed_type": "text_time",
    "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": 256,
    "center_input_sample": False,
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 128,
    "use_linear_projection": True,
}
_SDXL_UNET = {
    **_SDXL_UNET_COMMON,
    "attention_head_dim": [5, 10, 20],
    "block_out_channels": [320, 640, 1280],
    "cross_attention_dim": 2048,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "projection_class_embeddings_input_dim": 2816,
    "transformer_layers_per_block": [1, 2, 10],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
}
_SDXL_REFINER_UNET = {
    **_SDXL_UNET_COMMON,
    "attention_head_dim": [6, 12, 24, 24],
    "block_out_channels": [384, 768, 1536, 1536],
    "cross_attention_dim": 1280,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "in_channels": 4,
    "projection_class_embeddings_input_dim": 2560,
    "transformer_layers_per_block": 4,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
}
# OpenCLIP ViT-bigG/14 text tower as CLIPTextModelWithProjection (SDXL text_encoder_2/config.json).
_SDXL_TEXT_2 = {**_CLIP_TEXT, "architectures": ["CLIPTextModelWithProjection"], "hidden_act": "gelu", "hidden_size": 1280,
                "intermediate_size": 5120, "num_attention_heads": 20, "num_hidden_layers": 32, "projection_dim": 1280}
# The SDXL VAE overflows float16 (hence force_upcast, and madebyollin/sdxl-vae-fp16-fix).
_SDXL_VAE = {**_SD_VAE, "force_upcast": True, "scaling_factor": 0.13025}
# stabilityai/stable-diffusion-xl-base-1.0 scheduler/scheduler_config.json.
_SDXL_EULER = {"_class_name": "EulerDiscreteScheduler", **_SCHEDULER_COMMON, "interpolation_type": "linear",
               "prediction_type": "epsilon", "sample_max_value": 1.0, "timestep_spacing": "leading", "use_karras_sigmas": False}

PRESETS: dict[str, dict] = {
    "sd15": {"pipeline": "StableDiffusionPipeline", "unet": {**_SD1_UNET, "in_channels": 4, "sample_size": 64},
             "vae_size": 512, "text": _SD1_TEXT, "scheduler": _PNDM_EPSILON, "pad": "<|endoftext|>"},
    "sd15-inpainting": {"pipeline": "StableDiffusionInpaintPipeline", "unet": {**_SD1_UNET, "in_channels": 9, "sample_size": 64},
                        "vae_size": 512, "text": _SD1_TEXT, "scheduler": _PNDM_EPSILON, "pad": "<|endoftext|>"},
    "sd21": {"pipeline": "StableDiffusionPipeline", "unet": {**_SD2_UNET, "in_channels": 4, "sample_size": 96, "upcast_attention": True},
             "vae_size": 768, "text": _SD2_TEXT, "scheduler": _DDIM_V, "pad": "!"},
    "sd21-base": {"pipeline": "StableDiffusionPipeline", "unet": {**_SD2_UNET, "in_channels": 4, "sample_size": 64},
                  "vae_size": 512, "text": _SD2_TEXT, "scheduler": _PNDM_EPSILON, "pad": "!"},
    "sd2-inpainting": {"pipeline": "StableDiffusionInpaintPipeline", "unet": {**_SD2_UNET, "in_channels": 9, "sample_size": 64},
                       "vae_size": 512, "text": _SD2_TEXT, "scheduler": _PNDM_EPSILON, "pad": "!"},
    "sdxl": {"pipeline": "StableDiffusionXLPipeline", "unet": {**_SDXL_UNET, "in_channels": 4}, "vae": _SDXL_VAE, "vae_size": 1024,
             "text": _SD1_TEXT, "text_2": _SDXL_TEXT_2, "scheduler": _SDXL_EULER, "pad": "<|endoftext|>",
             "pipeline_config": {"force_zeros_for_empty_prompt": True}},
    "sdxl-inpainting": {"pipeline": "StableDiffusionXLInpaintPipeline", "unet": {**_SDXL_UNET, "in_channels": 9}, "vae": _SDXL_VAE,
                        "vae_size": 1024, "text": _SD1_TEXT, "text_2": _SDXL_TEXT_2, "scheduler": _SDXL_EULER, "pad": "<|endoftext|>",
                        "pipeline_config": {"force_zeros_for_empty_prompt": True, "requires_aesthetics_score": False}},
    "sdxl-refiner": {"pipeline": "StableDiffusionXLImg2ImgPipeline", "unet": _SDXL_REFINER_UNET, "vae": _SDXL_VAE, "vae_size": 1024,
                     "text": None, "text_2": _SDXL_TEXT_2, "scheduler": _SDXL_EULER,
                     "pipeline_config": {"force_zeros_for_empty_prompt": False, "requires_aesthetics_score": True}},
}
# OpenCLIP bigG pads with "!" (SDXL tokenizer_2/special_tokens_map.json).
SDXL_PAD_2 = "!"
# Keys that tell the SDXL families apart: encoder 2 (bigG) of the base, the refiner's only encoder (bigG).
SDXL_BASE_KEY = "conditioner.embedders.1.model.positional_embedding"
SDXL_REFINER_KEY = "conditioner.embedders.0.model.positional_embedding"
_CROSS_ATTENTION_K = re.compile(r"^model\.diffusion_model\.input_blocks\.\d+\.1\.transformer_blocks\.0\.attn2\.to_k\.weight$")


def sdxl_kind(shapes: dict[str, list[int]]) -> str | None:
    """"base" (two text encoders), "refiner" (bigG alone) or None (not an SDXL checkpoint)."""
    if SDXL_BASE_KEY in shapes:
        return "base"
    if SDXL_REFINER_KEY in shapes:
        return "refiner"
    return None


def detect_sdxl_preset(shapes: dict[str, list[int]]) -> str:
    """The SDXL preset that fits the checkpoint's U-Net: input channels, and its cross-attention width
    (the first attention sits at a depth that depends on the architecture, so any block's is read)."""
    conv_in = shapes.get(UNET_CONV_IN)
    widths = {shape[-1] for key, shape in shapes.items() if _CROSS_ATTENTION_K.match(key)}
    if conv_in is None or not widths:
        raise ValueError("not an SDXL U-Net (no conv_in or cross-attention)")
    width, channels = max(widths), conv_in[1]
    if sdxl_kind(shapes) == "refiner":
        if width != 1280 or channels != 4:
            raise ValueError(f"an SDXL refiner's U-Net has 4 input channels and 1280-wide cross-attention, this one {channels} and {width}")
        return "sdxl-refiner"
    if width != 2048:
        raise ValueError(f"the U-Net's cross-attention is {width} wide, SDXL's is 2048 (768 + 1280)")
    if channels not in (4, 9):
        raise ValueError(f"the U-Net takes {channels} input channels; SDXL takes 4 (or 9 for inpainting)")
    return "sdxl" if channels == 4 else "sdxl-inpainting"


def detect_preset(shapes: dict[str, list[int]], prediction_type: str | None) -> tuple[str, str | None]:
    """(preset name, a note to print or None) from the checkpoint's tensor shapes."""
    conv_in = shapes.get(UNET_CONV_IN)
    cross = shapes.get(UNET_CROSS_ATTENTION_K)
    if conv_in is None or cross is None:
        raise ValueError("not an SD 1.x/2.x U-Net (no conv_in or first cross-attention)")
    width, channels = cross[-1], conv_in[1]
    if channels not in (4, 9):
        raise ValueError(f"the U-Net takes {channels} input channels; SD 1.x/2.x take 4 (or 9 for inpainting)")
    if width == 768:
        if prediction_type == "v_prediction":
            raise ValueError("SD 1.x checkpoints predict epsilon; --prediction-type v_prediction needs --config")
        return ("sd15" if channels == 4 else "sd15-inpainting"), None
    if width == 1024:
        if channels == 9:
            return "sd2-inpainting", None
        if prediction_type == "epsilon":
            return "sd21-base", None
        note = None if prediction_type else (
            "note: assumed SD 2.x 768-v (v_prediction, 768 px), as diffusers does; "
            "for a 512-base (epsilon) model pass --prediction-type epsilon"
        )
        return "sd21", note
    raise ValueError(f"the U-Net's cross-attention is {width} wide: neither SD 1.x (768) nor SD 2.x (1024)")


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _write_tokenizer(out: Path, pad: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for f in ("vocab.json", "merges.txt"):
        shutil.copyfile(CLIP_TOKENIZER / f, out / f)
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": pad}
    _write(out / "special_tokens_map.json", special)
    _write(out / "tokenizer_config.json", {"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, **special})


def write_preset_config(name: str, out: Path) -> Path:
    """A diffusers-format config folder (no weights) for `from_single_file(config=...)`."""
    preset = PRESETS[name]
    sdxl = "text_2" in preset
    index = {
        "_class_name": preset["pipeline"],
        "scheduler": ["diffusers", preset["scheduler"]["_class_name"]],
        "text_encoder": ["transformers", "CLIPTextModel"] if preset["text"] else [None, None],
        "tokenizer": ["transformers", "CLIPTokenizer"] if preset["text"] else [None, None],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    if sdxl:
        index.update({"text_encoder_2": ["transformers", "CLIPTextModelWithProjection"], "tokenizer_2": ["transformers", "CLIPTokenizer"],
                      **preset["pipeline_config"]})
    else:
        index.update({"feature_extractor": [None, None], "requires_safety_checker": False, "safety_checker": [None, None]})
    _write(out / "model_index.json", index)
    _write(out / "unet" / "config.json", preset["unet"])
    _write(out / "vae" / "config.json", {**preset.get("vae", _SD_VAE), "sample_size": preset["vae_size"]})
    _write(out / "scheduler" / "scheduler_config.json", preset["scheduler"])
    if preset["text"]:
        _write(out / "text_encoder" / "config.json", preset["text"])
        _write_tokenizer(out / "tokenizer", preset["pad"])
    if sdxl:
        _write(out / "text_encoder_2" / "config.json", preset["text_2"])
        _write_tokenizer(out / "tokenizer_2", SDXL_PAD_2)
    return out
