"""Tiny SDXL folders (base, inpainting 9-channel, Turbo, refiner) in the optimum >= 1.24 ONNX layout, and
their parity references from diffusers' torch SDXL pipelines on the same weights.

What is real here (wave2-reference §2): diffusers `UNet2DConditionModel(addition_embed_type="text_time")`,
transformers `CLIPTextModel` (text_encoder) and `CLIPTextModelWithProjection` (text_encoder_2), and a tiny
`AutoencoderKL` with SDXL's scaling factor 0.13025 and `force_upcast`. The ONNX signatures are optimum's
(optimum-onnx `model_configs.py`, ≥ 1.24 generation), reproduced with the TorchScript exporter because
optimum does not install beside the pinned torch/transformers:

* text_encoder  (CLIPTextOnnxConfig, "clip-text", output_hidden_states=True): input_ids int64
  {0: batch_size, 1: sequence_length} → last_hidden_state, pooler_output, hidden_states.0 … hidden_states.L
* text_encoder_2 (CLIPTextWithProjectionOnnxConfig): input_ids int64 → text_embeds (dim 1 labelled
  sequence_length, as optimum does), last_hidden_state, hidden_states.0 … hidden_states.L
* unet (UNetOnnxConfig): sample, timestep (float scalar), encoder_hidden_states, text_embeds {0: batch_size},
  time_ids {0: batch_size} → out_sample; external data in model.onnx_data
* vae_encoder / vae_decoder: latent_parameters / latent_sample, as for SD (exporters.export_optimum_vae)

Sizes (the real ones in brackets): text_encoder width 32 [768], 2 layers [12]; text_encoder_2 width 48
[1280], 3 layers [32], projection 40 [1280]; cross-attention 32 + 48 = 80 [2048];
addition_time_embed_dim 8 [256], so projection_class_embeddings_input_dim = 6·8 + 40 = 88 [2816], the
refiner 5·8 + 40 = 80 [2560] with cross-attention 48 [1280].
"""

from __future__ import annotations

import copy
import importlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from diffusers import (
    AutoencoderKL,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLInpaintPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from diffusers.models.autoencoders import vae as vae_module
from diffusers.pipelines.stable_diffusion_xl import (
    pipeline_stable_diffusion_xl,
    pipeline_stable_diffusion_xl_img2img,
    pipeline_stable_diffusion_xl_inpaint,
)
from PIL import Image
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from .exporters import (
    ONNX_WEIGHTS_NAME,
    OPTIMUM_DUMMY_BATCH,
    OPTIMUM_DUMMY_SEQUENCE,
    OPTIMUM_NEW,
    OPTIMUM_NEW_OPSET,
    _save_optimum_external_data,
    _torchscript_export,
    export_optimum_vae,
)
from .folders import _fresh, _resave_external, _write_json
from .mixed_precision import convert_model_file_to_fp16
from .onnx_names import compact_internal_names
from .parity import _plain_config, _save_image, _stats
from .tiny_models import (
    IMAGE_SIZE,
    LATENT_CHANNELS,
    LATENT_SIZE,
    TARGET_UNET_OUTPUT_STD,
    TEXT_MAX_POSITIONS,
    TIME_EMBEDDING_GAIN,
    VaeSpec,
    _rescale_conv_out,
    build_vae,
    calibrate_vae_decoder,
)
from .tokenizer_files import EOS_TOKEN, SD2_PAD_TOKEN, TinyVocabulary, write_tokenizer_folder

SDXL_VAE_SCALING_FACTOR = 0.13025  # sgm scale_factor; stabilityai/sdxl-vae config.json
TE1_WIDTH, TE1_LAYERS = 32, 2
TE2_WIDTH, TE2_LAYERS, TE2_PROJECTION = 48, 3, 40
ADDITION_TIME_EMBED_DIM = 8
BASE_TIME_IDS = 6  # (orig h, orig w, crop top, crop left, target h, target w)
REFINER_TIME_IDS = 5  # (orig h, orig w, crop top, crop left, aesthetic score)
# The added (pooled + time ids) embedding hardly moves a random U-Net; amplified like the time embedding so
# that time ids and pooled embeds show in the image and a wrong one fails the parity cases.
ADD_EMBEDDING_GAIN = 8.0

# stabilityai/stable-diffusion-xl-base-1.0 scheduler/scheduler_config.json (the keys it has).
SDXL_BASE_SCHEDULER_CONFIG = {
    "_class_name": "EulerDiscreteScheduler",
    "_diffusers_version": "0.19.0.dev0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "sample_max_value": 1.0,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "trained_betas": None,
    "use_karras_sigmas": False,
}
# stabilityai/sdxl-turbo scheduler/scheduler_config.json: Euler ancestral, trailing spacing.
SDXL_TURBO_SCHEDULER_CONFIG = {
    "_class_name": "EulerAncestralDiscreteScheduler",
    "_diffusers_version": "0.24.0.dev0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "sample_max_value": 1.0,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "trailing",
    "trained_betas": None,
    "use_karras_sigmas": False,
}

PROMPT = "a red apple on a wooden table"
NEGATIVE = "blurry, low quality"
STEPS = 8
CFG = 5.0
IMG2IMG_STRENGTH = 0.6
TURBO_STEPS = 1
LATENTS_SEED = 2468
LATENTS_FILE = "sdxl-latents.npy"
POSTERIOR_SEED = 1357
CASES_FILE = "sdxl-cases.json"
INIT_IMAGE_FILE = "sdxl-init.png"
MASK_FILE = "sdxl-mask.png"


@dataclass
class SdxlModels:
    text_encoder: CLIPTextModel | None
    text_encoder_2: CLIPTextModelWithProjection
    unet: UNet2DConditionModel
    vae: AutoencoderKL


@dataclass
class SdxlFolder:
    name: str
    root: Path
    models: SdxlModels
    scheduler_config: dict
    refiner: bool


def _text_config(vocab: TinyVocabulary, width: int, layers: int, act: str, projection: int) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=vocab.size,
        hidden_size=width,
        intermediate_size=2 * width,
        num_hidden_layers=layers,
        num_attention_heads=4,
        max_position_embeddings=TEXT_MAX_POSITIONS,
        hidden_act=act,
        projection_dim=projection,
        bos_token_id=vocab.bos_id,
        eos_token_id=vocab.eos_id,
        pad_token_id=vocab.eos_id,
        attn_implementation="eager",
    )


def _build_unet(in_channels: int, cross_attention_dim: int, time_ids: int) -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=LATENT_SIZE,
        in_channels=in_channels,
        out_channels=LATENT_CHANNELS,
        block_out_channels=(8, 16),
        layers_per_block=1,
        # SDXL: no attention at the first level, cross-attention below it, linear projections.
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=2,
        norm_num_groups=4,
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=ADDITION_TIME_EMBED_DIM,
        projection_class_embeddings_input_dim=time_ids * ADDITION_TIME_EMBED_DIM + TE2_PROJECTION,
    ).eval()


@torch.no_grad()
def _calibrate_unet(unet: UNet2DConditionModel, time_ids: int, generator: torch.Generator) -> None:
    sample = torch.randn(2, unet.config.in_channels, LATENT_SIZE, LATENT_SIZE, generator=generator)
    hidden = torch.randn(2, TEXT_MAX_POSITIONS, unet.config.cross_attention_dim, generator=generator)
    added = {
        "text_embeds": torch.randn(2, TE2_PROJECTION, generator=generator),
        "time_ids": torch.tensor([[IMAGE_SIZE, IMAGE_SIZE, 0, 0, IMAGE_SIZE, IMAGE_SIZE][:time_ids]] * 2, dtype=torch.float32),
    }
    out = unet(sample, torch.tensor([500.0, 500.0]), hidden, added_cond_kwargs=added).sample
    _rescale_conv_out(unet.conv_out, out.std().item(), TARGET_UNET_OUTPUT_STD)


def build_sdxl_models(vocab: TinyVocabulary, seed: int, in_channels: int = 4, refiner: bool = False) -> SdxlModels:
    """Seeded: the same arguments always give the same weights (CPU torch RNG)."""
    torch.manual_seed(seed)
    text_encoder = None if refiner else CLIPTextModel(_text_config(vocab, TE1_WIDTH, TE1_LAYERS, "quick_gelu", TE1_WIDTH)).eval()
    torch.manual_seed(seed + 1)
    text_encoder_2 = CLIPTextModelWithProjection(_text_config(vocab, TE2_WIDTH, TE2_LAYERS, "gelu", TE2_PROJECTION)).eval()
    time_ids = REFINER_TIME_IDS if refiner else BASE_TIME_IDS
    torch.manual_seed(seed + 2)
    unet = _build_unet(in_channels, TE2_WIDTH if refiner else TE1_WIDTH + TE2_WIDTH, time_ids)
    torch.manual_seed(seed + 3)
    vae = build_vae(VaeSpec(scaling_factor=SDXL_VAE_SCALING_FACTOR))
    with torch.no_grad():
        for layer in (unet.time_embedding.linear_2, unet.add_embedding.linear_2):
            layer.weight.mul_(TIME_EMBEDDING_GAIN if layer is unet.time_embedding.linear_2 else ADD_EMBEDDING_GAIN)
            layer.bias.mul_(TIME_EMBEDDING_GAIN if layer is unet.time_embedding.linear_2 else ADD_EMBEDDING_GAIN)
    calibration = torch.Generator().manual_seed(seed + 4)
    _calibrate_unet(unet, time_ids, calibration)
    calibrate_vae_decoder(vae, calibration)
    return SdxlModels(text_encoder, text_encoder_2, unet, vae)


# --------------------------------------------------------------------------------------------------
# optimum's SDXL signatures


class _TextEncoderHidden(torch.nn.Module):
    """CLIPTextOnnxConfig with output_hidden_states: last_hidden_state, pooler_output, hidden_states.*."""

    def __init__(self, model: CLIPTextModel):
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        out = self.model(input_ids=input_ids, output_hidden_states=True)
        return (out.last_hidden_state, out.pooler_output, *out.hidden_states)


class _TextEncoderWithProjectionHidden(torch.nn.Module):
    """CLIPTextWithProjectionOnnxConfig with output_hidden_states: text_embeds, last_hidden_state, hidden_states.*."""

    def __init__(self, model: CLIPTextModelWithProjection):
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        out = self.model(input_ids=input_ids, output_hidden_states=True)
        return (out.text_embeds, out.last_hidden_state, *out.hidden_states)


class _SdxlUNet(torch.nn.Module):
    """UNetOnnxConfig with addition_embed_type "text_time": text_embeds and time_ids go into
    added_cond_kwargs (optimum's generate_dummy_inputs), the output is renamed out_sample."""

    def __init__(self, unet: UNet2DConditionModel):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states, text_embeds, time_ids):
        added = {"text_embeds": text_embeds, "time_ids": time_ids}
        return self.unet(sample, timestep, encoder_hidden_states, added_cond_kwargs=added, return_dict=False)[0]


def rebuilt_text_encoders_checked(folder: Path, models: SdxlModels) -> tuple[CLIPTokenizer, CLIPTokenizer]:
    """The folder's two tokenizers, after checking that the rebuilt torch encoders are its ONNX ones
    (penultimate hidden state, within 1e-4): a parity script's reference is only worth its torch modules."""
    import onnxruntime as ort

    tokenizers = (CLIPTokenizer.from_pretrained(str(folder / "tokenizer")), CLIPTokenizer.from_pretrained(str(folder / "tokenizer_2")))
    for sub, model, tokenizer in (("text_encoder", models.text_encoder, tokenizers[0]), ("text_encoder_2", models.text_encoder_2, tokenizers[1])):
        session = ort.InferenceSession(str(folder / sub / "model.onnx"), providers=["CPUExecutionProvider"])
        ids = tokenizer("a red apple", padding="max_length", max_length=77).input_ids
        layers = model.config.num_hidden_layers
        onnx_out = session.run([f"hidden_states.{layers - 1}"], {"input_ids": np.array([ids], dtype=np.int64)})[0]
        with torch.no_grad():
            torch_out = model(torch.tensor([ids]), output_hidden_states=True).hidden_states[-2].numpy()
        diff = float(np.abs(onnx_out - torch_out).max())
        if diff > 1e-4:
            raise SystemExit(f"the rebuilt torch {sub} differs from {folder}/{sub} ({diff})")
    return tokenizers


def _export_text_encoder(root: Path, sub: str, model, generator: torch.Generator) -> None:
    batch, seq = OPTIMUM_DUMMY_BATCH, OPTIMUM_DUMMY_SEQUENCE
    layers = model.config.num_hidden_layers
    hidden_names = [f"hidden_states.{i}" for i in range(layers + 1)]
    seq_axes = {0: "batch_size", 1: "sequence_length"}
    if isinstance(model, CLIPTextModelWithProjection):
        wrapper, heads = _TextEncoderWithProjectionHidden(model), ["text_embeds", "last_hidden_state"]
        axes = {"text_embeds": dict(seq_axes), "last_hidden_state": dict(seq_axes)}
    else:
        wrapper, heads = _TextEncoderHidden(model), ["last_hidden_state", "pooler_output"]
        axes = {"last_hidden_state": dict(seq_axes), "pooler_output": {0: "batch_size"}}
    axes.update({name: dict(seq_axes) for name in hidden_names})
    _torchscript_export(
        wrapper,
        (torch.randint(0, model.config.vocab_size, (batch, seq), generator=generator, dtype=torch.int64),),
        root / sub / ONNX_WEIGHTS_NAME,
        ["input_ids"],
        heads + hidden_names,
        {"input_ids": dict(seq_axes), **axes},
        OPTIMUM_NEW_OPSET,
    )


@torch.no_grad()
def export_sdxl_optimum(root: Path, models: SdxlModels, generator: torch.Generator) -> None:
    batch, seq = OPTIMUM_DUMMY_BATCH, OPTIMUM_DUMMY_SEQUENCE
    if models.text_encoder is not None:
        _export_text_encoder(root, "text_encoder", models.text_encoder, generator)
    _export_text_encoder(root, "text_encoder_2", models.text_encoder_2, generator)

    unet = models.unet
    size = unet.config.sample_size
    time_ids = (unet.config.projection_class_embeddings_input_dim - TE2_PROJECTION) // ADDITION_TIME_EMBED_DIM
    args = (
        torch.randn(batch, unet.config.in_channels, size, size, generator=generator),
        torch.rand((), generator=generator) * unet.config.norm_num_groups,
        torch.randn(batch, seq, unet.config.cross_attention_dim, generator=generator),
        torch.randn(batch, TE2_PROJECTION, generator=generator),
        torch.rand(batch, time_ids, generator=generator) * 100,
    )
    unet_path = root / "unet" / ONNX_WEIGHTS_NAME
    _torchscript_export(
        _SdxlUNet(unet),
        args,
        unet_path,
        ["sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids"],
        ["out_sample"],
        {
            "sample": {0: "batch_size", 2: "height", 3: "width"},
            "timestep": {},
            "encoder_hidden_states": {0: "batch_size", 1: "sequence_length"},
            "text_embeds": {0: "batch_size"},
            "time_ids": {0: "batch_size"},
            "out_sample": {0: "batch_size", 2: "height", 3: "width"},
        },
        OPTIMUM_NEW_OPSET,
    )
    _save_optimum_external_data(unet_path)
    export_optimum_vae(root, models.vae, OPTIMUM_NEW, OPTIMUM_NEW_OPSET, generator, batch)


def _save_text_config(model, folder: Path, export_type: str, architecture: str) -> None:
    config = copy.deepcopy(model.config)
    config.export_model_type = export_type
    config.architectures = [architecture]
    config.save_pretrained(folder)


def _pipeline(folder: SdxlFolder, cls, scheduler=None, tokenizers: tuple | None = None):
    """The torch pipeline of class `cls` on the folder's own weights (no watermark: it changes pixels)."""
    m = folder.models
    tok1, tok2 = tokenizers or _tokenizers(folder.root, folder.refiner)
    kwargs = dict(
        vae=m.vae,
        text_encoder=m.text_encoder,
        text_encoder_2=m.text_encoder_2,
        tokenizer=tok1,
        tokenizer_2=tok2,
        unet=m.unet,
        scheduler=scheduler or _scheduler(folder.scheduler_config),
        add_watermarker=False,
    )
    if cls is StableDiffusionXLPipeline:
        kwargs["force_zeros_for_empty_prompt"] = not folder.refiner
    else:
        kwargs["requires_aesthetics_score"] = folder.refiner
        kwargs["force_zeros_for_empty_prompt"] = not folder.refiner
    pipe = cls(**kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _tokenizers(root: Path, refiner: bool):
    tok1 = None if refiner else CLIPTokenizer.from_pretrained(root / "tokenizer")
    return tok1, CLIPTokenizer.from_pretrained(root / "tokenizer_2")


def _scheduler(config: dict):
    cls = {c.__name__: c for c in (EulerDiscreteScheduler, EulerAncestralDiscreteScheduler)}[config["_class_name"]]
    return cls.from_config(config)


def _sdxl_folder(
    name: str, out: Path, vocab: TinyVocabulary, seed: int, scheduler_config: dict, in_channels: int = 4, refiner: bool = False
) -> SdxlFolder:
    root = out / name
    _fresh(root)
    if not refiner:
        write_tokenizer_folder(root / "tokenizer", vocab, EOS_TOKEN)
    write_tokenizer_folder(root / "tokenizer_2", vocab, SD2_PAD_TOKEN)  # OpenCLIP bigG pads with "!"
    models = build_sdxl_models(vocab, seed, in_channels, refiner)
    export_sdxl_optimum(root, models, torch.Generator().manual_seed(seed + 10))
    _compact_names(root)
    _resave_external(root / "unet" / ONNX_WEIGHTS_NAME, "model.onnx_data", convert_attribute=True, size_threshold=100)

    if models.text_encoder is not None:
        _save_text_config(models.text_encoder, root / "text_encoder", "clip-text", "CLIPTextModel")
    _save_text_config(models.text_encoder_2, root / "text_encoder_2", "clip-text-with-projection", "CLIPTextModelWithProjection")
    models.unet.save_config(root / "unet")
    models.vae.save_config(root / "vae_encoder")
    models.vae.save_config(root / "vae_decoder")
    _write_json(root / "scheduler" / "scheduler_config.json", scheduler_config)
    folder = SdxlFolder(name, root, models, scheduler_config, refiner)
    cls = StableDiffusionXLImg2ImgPipeline if refiner else StableDiffusionXLInpaintPipeline if in_channels == 9 else StableDiffusionXLPipeline
    _pipeline(folder, cls).save_config(root)  # model_index.json of the torch pipeline, as optimum-cli writes it
    return folder


def _compact_names(root: Path) -> None:
    """Rename internals of each exported model and store it as one file (folders._compact_names_in_place,
    over the submodels this folder has). The text encoders keep torch's node names (small graphs), so a
    LoRA's `lora_te1_`/`lora_te2_` modules are found in them as in the folders people have."""
    for path in sorted(root.glob(f"*/{ONNX_WEIGHTS_NAME}")):
        model = onnx.load(path.as_posix())
        for extra in [p for p in path.parent.iterdir() if p.name != ONNX_WEIGHTS_NAME]:
            extra.unlink()
        keep_names = path.parent.name.startswith("text_encoder")
        onnx.save_model(model if keep_names else compact_internal_names(model), path.as_posix())


def write_fp16_vae_decoder(out: Path) -> Path:
    """tiny-sdxl's VAE decoder converted to fp16 with fp16 I/O (ORT's optimize_pipeline --float16, as
    mixed_precision.py does) and its config.json (force_upcast: true): an SDXL folder with it must decode
    in fp32. Only this submodel is kept; the test puts it into a copy of tiny-sdxl."""
    root = out / "tiny-sdxl-fp16-vae"
    _fresh(root)
    convert_model_file_to_fp16(out / "tiny-sdxl" / "vae_decoder" / ONNX_WEIGHTS_NAME, root / "vae_decoder" / ONNX_WEIGHTS_NAME, None)
    (root / "vae_decoder" / "config.json").write_bytes((out / "tiny-sdxl" / "vae_decoder" / "config.json").read_bytes())
    return root


def build_sdxl_folders(out: Path, vocab: TinyVocabulary) -> dict[str, SdxlFolder]:
    folders = {
        "tiny-sdxl": _sdxl_folder("tiny-sdxl", out, vocab, 7000, SDXL_BASE_SCHEDULER_CONFIG),
        "tiny-sdxl-inpaint": _sdxl_folder("tiny-sdxl-inpaint", out, vocab, 7100, SDXL_BASE_SCHEDULER_CONFIG, in_channels=9),
        "tiny-sdxl-turbo": _sdxl_folder("tiny-sdxl-turbo", out, vocab, 7200, SDXL_TURBO_SCHEDULER_CONFIG),
        "tiny-sdxl-refiner": _sdxl_folder("tiny-sdxl-refiner", out, vocab, 7300, SDXL_BASE_SCHEDULER_CONFIG, refiner=True),
    }
    write_fp16_vae_decoder(out)
    return folders


# --------------------------------------------------------------------------------------------------
# parity references (torch pipelines on the exported weights, fixed latents and posterior noise)


class _Replay:
    """Stands in for diffusers' randn_tensor in one module: returns the given tensors in order."""

    def __init__(self, tensors: list[np.ndarray]):
        self.tensors = tensors
        self.used = 0

    def __call__(self, shape, generator=None, device=None, dtype=None, **_):
        t = torch.from_numpy(self.tensors[self.used].copy()).to(dtype=dtype)
        if tuple(t.shape) != tuple(shape):
            raise ValueError(f"asked for noise of shape {tuple(shape)}, the replayed one is {tuple(t.shape)}")
        self.used += 1
        return t


def _test_images() -> tuple[Image.Image, Image.Image]:
    """A smooth picture with a disc (as test/support testPicture draws it) and a centred square mask."""
    y, x = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
    disc = (x - IMAGE_SIZE / 2) ** 2 + (y - IMAGE_SIZE / 2) ** 2 < (IMAGE_SIZE / 4) ** 2
    rgb = np.stack([np.where(disc, 220, np.round(x / IMAGE_SIZE * 255)), np.where(disc, 40, np.round(y / IMAGE_SIZE * 255)), np.where(disc, 40, 128)], -1)
    mask = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    mask[16:48, 20:52] = 255
    return Image.fromarray(rgb.astype(np.uint8)), Image.fromarray(mask)


def _zero_noise(shape, generator=None, device=None, dtype=None, **_):
    """The schedulers' randn_tensor: Euler draws noise every step and uses it only when s_churn > 0
    (never here), and Euler ancestral's last step scales it by σ_up = 0; zeros make both exact."""
    return torch.zeros(shape, dtype=dtype)


def _run(pipe, module, noises: dict, **kwargs) -> np.ndarray:
    """Calls the pipeline with its randn_tensor calls replayed: `noises["pipeline"]` in `module` (the
    initial noise) and `noises["posterior"]` in the VAE's DiagonalGaussianDistribution.sample."""
    replays = [(module, _Replay(noises.get("pipeline", []))), (vae_module, _Replay(noises.get("posterior", [])))]
    patched = replays + [(importlib.import_module(type(pipe.scheduler).__module__), _zero_noise)]
    originals = [(m, m.randn_tensor) for m, _ in patched]
    for m, replacement in patched:
        m.randn_tensor = replacement
    try:
        image = pipe(output_type="np", height=IMAGE_SIZE, width=IMAGE_SIZE, **kwargs).images[0]
    finally:
        for m, original in originals:
            m.randn_tensor = original
    for (m, replay), key in zip(replays, ("pipeline", "posterior"), strict=True):
        if replay.used != len(noises.get(key, [])):
            raise AssertionError(f"{m.__name__}: {replay.used} noise draws, {len(noises.get(key, []))} given")
    return image


def _token_ids(tokenizer: CLIPTokenizer, text: str) -> list[int]:
    return tokenizer(text, padding="max_length", max_length=tokenizer.model_max_length, truncation=True).input_ids


@torch.no_grad()
def make_sdxl_parity(folders: dict[str, SdxlFolder], parity: Path, fixtures_root: Path) -> list[dict]:
    parity.mkdir(parents=True, exist_ok=True)
    shape = (1, LATENT_CHANNELS, LATENT_SIZE, LATENT_SIZE)
    latents = np.random.RandomState(LATENTS_SEED).standard_normal(shape).astype(np.float32)
    posterior = np.random.RandomState(POSTERIOR_SEED).standard_normal((2,) + shape).astype(np.float32)
    np.save(parity / LATENTS_FILE, latents)
    np.save(parity / "sdxl-posterior-noise.npy", posterior)
    init, mask = _test_images()
    init.save(parity / INIT_IMAGE_FILE, optimize=False)
    mask.save(parity / MASK_FILE, optimize=False)

    base = folders["tiny-sdxl"]
    cases: list[dict] = []

    def case(name, folder, pipe, module, sampler, steps, cfg, negative, noises, extra=None, **kwargs):
        image = _run(pipe, module, noises, prompt=PROMPT, negative_prompt=negative or None, num_inference_steps=steps, guidance_scale=cfg, **kwargs)
        png, npy = _save_image(parity, name, image)
        print(f"parity {name:28s} {_stats(image)}")
        tok1, tok2 = pipe.tokenizer, pipe.tokenizer_2
        cases.append(
            {
                "name": name,
                "model": folder.root.relative_to(fixtures_root).as_posix(),
                "pipeline": f"diffusers {type(pipe).__name__} (torch, the weights exported to the folder)",
                "prompt": PROMPT,
                "negative": negative,
                "steps": steps,
                "cfg": cfg,
                "sampler": sampler,
                "width": IMAGE_SIZE,
                "height": IMAGE_SIZE,
                "latents": LATENTS_FILE,
                **(extra or {}),
                "reference": png,
                "reference_float": npy,
                "prompt_ids": _token_ids(tok1, PROMPT) if tok1 else None,
                "prompt_ids_2": _token_ids(tok2, PROMPT),
                "scheduler_config": _plain_config(pipe.scheduler.config, type(pipe.scheduler).__name__),
            }
        )

    # txt2img, the folder's Euler; an empty negative → zeros (force_zeros_for_empty_prompt).
    pipe = _pipeline(base, StableDiffusionXLPipeline)
    case("tiny-sdxl-euler", base, pipe, pipeline_stable_diffusion_xl, "euler", STEPS, CFG, "", {}, {"mode": "txt2img"}, latents=torch.from_numpy(latents))
    # txt2img, DPM++ 2M Karras, with a written negative (encoded by both encoders).
    dpm = DPMSolverMultistepScheduler.from_config(base.scheduler_config, use_karras_sigmas=True)
    pipe = _pipeline(base, StableDiffusionXLPipeline, scheduler=dpm)
    case("tiny-sdxl-dpmpp_2m_karras", base, pipe, pipeline_stable_diffusion_xl, "dpmpp_2m_karras", STEPS, CFG, NEGATIVE, {}, {"mode": "txt2img"}, latents=torch.from_numpy(latents))
    # img2img: posterior noise for the init image, then the initial noise.
    pipe = _pipeline(base, StableDiffusionXLImg2ImgPipeline)
    case(
        "tiny-sdxl-img2img-euler",
        base,
        pipe,
        pipeline_stable_diffusion_xl_img2img,
        "euler",
        STEPS,
        CFG,
        "",
        {"pipeline": [latents], "posterior": [posterior[0]]},
        {"mode": "img2img", "strength": IMG2IMG_STRENGTH, "init_image": INIT_IMAGE_FILE, "posterior_noise": "sdxl-posterior-noise.npy"},
        image=init,
        strength=IMG2IMG_STRENGTH,
    )
    # inpaint (9-channel), strength 1: pure noise start, one posterior draw for the masked image.
    inpaint = folders["tiny-sdxl-inpaint"]
    pipe = _pipeline(inpaint, StableDiffusionXLInpaintPipeline)
    case(
        "tiny-sdxl-inpaint-euler",
        inpaint,
        pipe,
        pipeline_stable_diffusion_xl_inpaint,
        "euler",
        STEPS,
        CFG,
        "",
        {"pipeline": [latents], "posterior": [posterior[0]]},
        {"mode": "inpaint", "strength": 1.0, "init_image": INIT_IMAGE_FILE, "mask": MASK_FILE, "posterior_noise": "sdxl-posterior-noise.npy"},
        image=init,
        mask_image=mask,
        strength=1.0,
    )
    # Turbo: 1 step, no guidance, Euler ancestral with trailing spacing (its last step adds no noise).
    turbo = folders["tiny-sdxl-turbo"]
    pipe = _pipeline(turbo, StableDiffusionXLPipeline)
    case("tiny-sdxl-turbo-euler_a", turbo, pipe, pipeline_stable_diffusion_xl, "euler_a", TURBO_STEPS, 0.0, "", {}, {"mode": "txt2img"}, latents=torch.from_numpy(latents))
    # Refiner img2img: encoder 2 only, aesthetic score time ids (6.0 / 2.5), no zeroed negative.
    refiner = folders["tiny-sdxl-refiner"]
    pipe = _pipeline(refiner, StableDiffusionXLImg2ImgPipeline)
    case(
        "tiny-sdxl-refiner-img2img-euler",
        refiner,
        pipe,
        pipeline_stable_diffusion_xl_img2img,
        "euler",
        STEPS,
        CFG,
        "",
        {"pipeline": [latents], "posterior": [posterior[0]]},
        {"mode": "img2img", "strength": 0.3, "init_image": INIT_IMAGE_FILE, "posterior_noise": "sdxl-posterior-noise.npy"},
        image=init,
        strength=0.3,
    )

    _save_conditioning(base, parity)
    (parity / CASES_FILE).write_text(json.dumps(cases, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return cases


def _save_conditioning(base: SdxlFolder, parity: Path) -> None:
    """The pipeline's own conditioning tensors for one prompt, to check the engine's on their own:
    prompt embeds [2, 77, 80] and pooled [2, 40] as [negative, positive] with a written negative and with
    the zeroed one, and add_time_ids for a 64×64 picture and for original 96×80, crop (8, 4), target 64×64."""
    pipe = _pipeline(base, StableDiffusionXLPipeline)
    pos, neg, pooled, neg_pooled = pipe.encode_prompt(PROMPT, negative_prompt=NEGATIVE, do_classifier_free_guidance=True)
    np.save(parity / "sdxl-prompt-embeds.npy", torch.cat([neg, pos]).numpy().astype(np.float32))
    np.save(parity / "sdxl-pooled.npy", torch.cat([neg_pooled, pooled]).numpy().astype(np.float32))
    _, zero, _, zero_pooled = pipe.encode_prompt(PROMPT, negative_prompt=None, do_classifier_free_guidance=True)
    assert float(zero.abs().max()) == 0.0 and float(zero_pooled.abs().max()) == 0.0
    projection = int(pooled.shape[-1])
    default = pipe._get_add_time_ids((IMAGE_SIZE, IMAGE_SIZE), (0, 0), (IMAGE_SIZE, IMAGE_SIZE), torch.float32, projection)
    custom = pipe._get_add_time_ids((96, 80), (8, 4), (IMAGE_SIZE, IMAGE_SIZE), torch.float32, projection)
    np.save(parity / "sdxl-time-ids.npy", torch.cat([default, custom]).numpy().astype(np.float32))
