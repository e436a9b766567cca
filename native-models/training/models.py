"""Builds the three networks from the config (diffusers / transformers classes at small sizes)."""
from __future__ import annotations

import os

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel


def limit_threads(threads: int) -> None:
    """The machine's 2 cores are shared: training runs single-threaded unless a config says otherwise.
    TRAIN_THREADS in the environment overrides the config (e.g. two stages side by side, one thread each)."""
    threads = int(os.environ.get("TRAIN_THREADS", threads))
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set once in this process


def build_vae(vae_cfg: dict) -> AutoencoderKL:
    blocks = len(vae_cfg["block_out_channels"])
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks,
        block_out_channels=tuple(vae_cfg["block_out_channels"]),
        layers_per_block=vae_cfg["layers_per_block"],
        latent_channels=vae_cfg["latent_channels"],
        norm_num_groups=vae_cfg["norm_num_groups"],
        sample_size=vae_cfg["sample_size"],
        scaling_factor=vae_cfg.get("scaling_factor", 0.18215),
        mid_block_add_attention=vae_cfg.get("mid_block_add_attention", True),
    )


def vae_downscale(vae_cfg: dict) -> int:
    # diffusers: vae_scale_factor = 2 ** (len(block_out_channels) - 1)
    return 2 ** (len(vae_cfg["block_out_channels"]) - 1)


def build_text_encoder(te_cfg: dict, vocab_size: int, bos_id: int, eos_id: int, pad_id: int) -> CLIPTextModel:
    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=te_cfg["hidden_size"],
        intermediate_size=te_cfg["intermediate_size"],
        num_hidden_layers=te_cfg["num_hidden_layers"],
        num_attention_heads=te_cfg["num_attention_heads"],
        max_position_embeddings=te_cfg["max_position_embeddings"],
        projection_dim=te_cfg["hidden_size"],
        hidden_act="quick_gelu",
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    return CLIPTextModel(config)


def build_unet(unet_cfg: dict, in_channels: int, sample_size: int, cross_attention_dim: int) -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=in_channels,
        out_channels=unet_cfg["out_channels"],
        down_block_types=tuple(unet_cfg["down_block_types"]),
        up_block_types=tuple(unet_cfg["up_block_types"]),
        mid_block_type=unet_cfg.get("mid_block_type", "UNetMidBlock2DCrossAttn"),
        block_out_channels=tuple(unet_cfg["block_out_channels"]),
        layers_per_block=unet_cfg["layers_per_block"],
        attention_head_dim=unet_cfg["attention_head_dim"],
        norm_num_groups=unet_cfg["norm_num_groups"],
        cross_attention_dim=cross_attention_dim,
        transformer_layers_per_block=unet_cfg.get("transformer_layers_per_block", 1),
    )


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
