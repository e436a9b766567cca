"""Tiny Stable-Diffusion-shaped torch modules (real diffusers/transformers classes, random weights).

Sizes are chosen so that all six fixture folders together stay a few MB (UNet block_out_channels
(8, 16), VAE 8 channels per level). Everything else follows the real SD layout: a 4-level VAE
(latent scale factor 8, 4 latent channels), a 2-layer CLIP text encoder, cross-attention in the
UNet, 77-token context.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

IMAGE_SIZE = 64
LATENT_SIZE = 8  # IMAGE_SIZE / 2**(len(vae block_out_channels) - 1)
LATENT_CHANNELS = 4
TEXT_MAX_POSITIONS = 77  # CLIP context length (tokenizer model_max_length)
SD_VAE_SCALING_FACTOR = 0.18215  # AutoencoderKL default, SD 1.x / 2.x

# Target for an unsaturated random decoder: std of the 8-bit image around 50 of 255. In the
# decoder's [-1, 1] output space (image = out/2 + 0.5) that is 2 * 50 / 255.
TARGET_PIXEL_STD_8BIT = 50.0
TARGET_DECODER_OUTPUT_STD = 2 * TARGET_PIXEL_STD_8BIT / 255.0
# A real UNet predicts unit-variance noise (epsilon or v); scale the random conv_out to about that.
TARGET_UNET_OUTPUT_STD = 1.0
# With random weights the noise prediction hardly depends on the timestep, so every deterministic
# sampler lands on nearly the same image and parity references of different samplers would differ by
# ~1/255. Amplifying the time embedding's last layer makes the prediction vary with t; the smallest
# mean difference between two sampler references then grows to ~3/255 (measured, seed 1000).
TIME_EMBEDDING_GAIN = 8.0


@dataclass(frozen=True)
class TextEncoderSpec:
    hidden_size: int = 32
    intermediate_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    hidden_act: str = "quick_gelu"  # SD 1.x (CLIP ViT-L/14); SD 2.x (OpenCLIP ViT-H) uses "gelu"


@dataclass(frozen=True)
class UNetSpec:
    in_channels: int = 4
    block_out_channels: tuple[int, ...] = (8, 16)
    norm_num_groups: int = 4
    attention_head_dim: int | tuple[int, ...] = 2  # diffusers' historic name: it is the number of heads
    use_linear_projection: bool = False  # SD 2.x: True
    upcast_attention: bool = False  # SD 2.1: True
    time_cond_proj_dim: int | None = None  # LCM: guidance embedding width


@dataclass(frozen=True)
class VaeSpec:
    block_out_channels: tuple[int, ...] = (8, 8, 8, 8)
    norm_num_groups: int = 4
    scaling_factor: float = SD_VAE_SCALING_FACTOR


@dataclass(frozen=True)
class ModelSpec:
    seed: int
    text: TextEncoderSpec = field(default_factory=TextEncoderSpec)
    unet: UNetSpec = field(default_factory=UNetSpec)
    vae: VaeSpec = field(default_factory=VaeSpec)


@dataclass
class TinyModels:
    text_encoder: CLIPTextModel
    unet: UNet2DConditionModel
    vae: AutoencoderKL


def build_text_encoder(spec: TextEncoderSpec, vocab_size: int, bos_id: int, eos_id: int) -> CLIPTextModel:
    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        max_position_embeddings=TEXT_MAX_POSITIONS,
        hidden_act=spec.hidden_act,
        projection_dim=spec.hidden_size,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
        attn_implementation="eager",
    )
    return CLIPTextModel(config).eval()


def build_unet(spec: UNetSpec, cross_attention_dim: int) -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=LATENT_SIZE,
        in_channels=spec.in_channels,
        out_channels=LATENT_CHANNELS,
        block_out_channels=spec.block_out_channels,
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=spec.attention_head_dim,
        norm_num_groups=spec.norm_num_groups,
        use_linear_projection=spec.use_linear_projection,
        upcast_attention=spec.upcast_attention,
        time_cond_proj_dim=spec.time_cond_proj_dim,
    ).eval()


def build_vae(spec: VaeSpec) -> AutoencoderKL:
    levels = len(spec.block_out_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=spec.block_out_channels,
        layers_per_block=1,
        latent_channels=LATENT_CHANNELS,
        norm_num_groups=spec.norm_num_groups,
        sample_size=IMAGE_SIZE,
        scaling_factor=spec.scaling_factor,
    ).eval()


@torch.no_grad()
def _rescale_conv_out(conv: torch.nn.Conv2d, measured_std: float, target_std: float) -> float:
    factor = target_std / measured_std
    conv.weight.mul_(factor)
    if conv.bias is not None:
        conv.bias.mul_(factor)
    return factor


@torch.no_grad()
def calibrate_vae_decoder(vae: AutoencoderKL, generator: torch.Generator) -> float:
    """Scale the decoder's conv_out so that N(0,1) latents (divided by the scaling factor, as the
    pipelines do before decoding) decode to an image with a pixel std near TARGET_PIXEL_STD_8BIT.
    conv_out follows GroupNorm + SiLU, so the output scale barely depends on the latent scale."""
    latents = torch.randn(4, LATENT_CHANNELS, LATENT_SIZE, LATENT_SIZE, generator=generator)
    decoded = vae.decode(latents / vae.config.scaling_factor).sample
    return _rescale_conv_out(vae.decoder.conv_out, decoded.std().item(), TARGET_DECODER_OUTPUT_STD)


@torch.no_grad()
def calibrate_unet(unet: UNet2DConditionModel, cross_attention_dim: int, generator: torch.Generator) -> float:
    sample = torch.randn(2, unet.config.in_channels, LATENT_SIZE, LATENT_SIZE, generator=generator)
    hidden = torch.randn(2, TEXT_MAX_POSITIONS, cross_attention_dim, generator=generator)
    kwargs = {}
    if unet.config.time_cond_proj_dim is not None:
        kwargs["timestep_cond"] = torch.randn(2, unet.config.time_cond_proj_dim, generator=generator)
    out = unet(sample, torch.tensor([500.0, 500.0]), hidden, **kwargs).sample
    return _rescale_conv_out(unet.conv_out, out.std().item(), TARGET_UNET_OUTPUT_STD)


def build_models(spec: ModelSpec, vocab_size: int, bos_id: int, eos_id: int) -> TinyModels:
    """Seeded: the same spec always gives the same weights (CPU torch RNG)."""
    torch.manual_seed(spec.seed)
    text_encoder = build_text_encoder(spec.text, vocab_size, bos_id, eos_id)
    torch.manual_seed(spec.seed + 1)
    unet = build_unet(spec.unet, spec.text.hidden_size)
    torch.manual_seed(spec.seed + 2)
    vae = build_vae(spec.vae)
    with torch.no_grad():
        unet.time_embedding.linear_2.weight.mul_(TIME_EMBEDDING_GAIN)
        unet.time_embedding.linear_2.bias.mul_(TIME_EMBEDDING_GAIN)
    calibration = torch.Generator().manual_seed(spec.seed + 3)
    calibrate_unet(unet, spec.text.hidden_size, calibration)
    calibrate_vae_decoder(vae, calibration)
    return TinyModels(text_encoder=text_encoder, unet=unet, vae=vae)
