#!/usr/bin/env python
"""Makes a tiny SD 1.x model for the conversion test, at the fixtures' sizes (fixtures_lib.tiny_models:
2-layer 32-wide CLIP, (8, 16) U-Net, 4-level 8-channel VAE; tokenizer of test/fixtures/models/tiny-sd1),
with seeded random weights, in two forms:

  OUT/diffusers/          a diffusers folder (save_pretrained, safetensors)
  OUT/config/             the same without weights: the --config for the single file
  OUT/tiny-sd1.safetensors the same weights as one file in the original (CompVis LDM) key layout
  OUT/onnx-from-folder/    OUT/diffusers converted by convert_lib in this process (the code path
                           convert.py takes for a folder; one Python start-up less for the test)

The LDM key names are written by `ldm_state_dict` below (the inverse of diffusers' single-file
conversion, for any number of levels and layers per level). A mistake in the mapping shows in the
test: from_single_file misses a key, or the single-file model draws a different picture than the
folder with the same weights.

Usage: make_tiny_checkpoint.py OUT
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"

import torch  # noqa: E402
from diffusers import PNDMScheduler, StableDiffusionPipeline  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import CLIPTokenizer  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, (REPO / "native-models" / "tools").as_posix())
from fixtures_lib.tiny_models import ModelSpec, build_models  # noqa: E402

TOKENIZER = REPO / "test" / "fixtures" / "models" / "tiny-sd1" / "tokenizer"
SCHEDULER = REPO / "test" / "fixtures" / "models" / "tiny-sd1" / "scheduler" / "scheduler_config.json"
SEED = 7070

RESNET = [("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("time_emb_proj", "emb_layers.1"),
          ("norm2", "out_layers.0"), ("conv2", "out_layers.3"), ("conv_shortcut", "skip_connection")]
VAE_RESNET = [("conv_shortcut", "nin_shortcut")]
VAE_ATTENTION = [("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out")]


def _rename(key: str, prefixes: list[tuple[str, str]], inner: list[tuple[str, str]]) -> str | None:
    for hf, ldm in prefixes:
        if key.startswith(hf):
            rest = key[len(hf):]
            for a, b in inner:
                if rest.startswith(a + "."):
                    rest = b + rest[len(a):]
                    break
            return ldm + rest
    return None


def unet_prefixes(unet) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(resnet prefixes, other prefixes) diffusers -> LDM UNetModel, following its block numbering."""
    layers = unet.config.layers_per_block
    levels = len(unet.down_blocks)
    resnets, others = [], []
    k = 1
    for i, block in enumerate(unet.down_blocks):
        for j in range(layers):
            resnets.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{k}.0."))
            if getattr(block, "attentions", None):
                others.append((f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{k}.1."))
            k += 1
        if i < levels - 1:
            others.append((f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{k}.0.op."))
            k += 1
    resnets += [("mid_block.resnets.0.", "middle_block.0."), ("mid_block.resnets.1.", "middle_block.2.")]
    others.append(("mid_block.attentions.0.", "middle_block.1."))
    m = 0
    for i, block in enumerate(unet.up_blocks):
        has_attention = bool(getattr(block, "attentions", None))
        for j in range(layers + 1):
            resnets.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{m}.0."))
            if has_attention:
                others.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{m}.1."))
            if j == layers and i < levels - 1:
                others.append((f"up_blocks.{i}.upsamplers.0.conv.", f"output_blocks.{m}.{2 if has_attention else 1}.conv."))
            m += 1
    others += [("time_embedding.linear_1.", "time_embed.0."), ("time_embedding.linear_2.", "time_embed.2."),
               ("conv_in.", "input_blocks.0.0."), ("conv_norm_out.", "out.0."), ("conv_out.", "out.2.")]
    if unet.config.addition_embed_type == "text_time":  # SDXL: pooled text + time ids (sgm's label_emb)
        others += [("add_embedding.linear_1.", "label_emb.0.0."), ("add_embedding.linear_2.", "label_emb.0.2.")]
    return resnets, others


def ldm_unet(unet) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    resnets, others = unet_prefixes(unet)
    for key, tensor in unet.state_dict().items():
        ldm = _rename(key, resnets, RESNET) or _rename(key, others, [])
        if ldm is None:
            raise SystemExit(f"no LDM name for unet key {key}")
        out["model.diffusion_model." + ldm] = tensor
    return out


def ldm_vae(vae) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    levels = len(vae.encoder.down_blocks)
    vae_prefixes = [("encoder.conv_norm_out.", "encoder.norm_out."), ("decoder.conv_norm_out.", "decoder.norm_out.")]
    for part in ("encoder", "decoder"):
        vae_prefixes += [(f"{part}.mid_block.resnets.0.", f"{part}.mid.block_1."), (f"{part}.mid_block.resnets.1.", f"{part}.mid.block_2.")]
    for i in range(levels):
        for j in range(len(vae.encoder.down_blocks[i].resnets)):
            vae_prefixes.append((f"encoder.down_blocks.{i}.resnets.{j}.", f"encoder.down.{i}.block.{j}."))
        vae_prefixes.append((f"encoder.down_blocks.{i}.downsamplers.0.conv.", f"encoder.down.{i}.downsample.conv."))
        for j in range(len(vae.decoder.up_blocks[i].resnets)):
            vae_prefixes.append((f"decoder.up_blocks.{i}.resnets.{j}.", f"decoder.up.{levels - 1 - i}.block.{j}."))
        vae_prefixes.append((f"decoder.up_blocks.{i}.upsamplers.0.conv.", f"decoder.up.{levels - 1 - i}.upsample.conv."))
    attention = [(f"{part}.mid_block.attentions.0.", f"{part}.mid.attn_1.") for part in ("encoder", "decoder")]
    for key, tensor in vae.state_dict().items():
        ldm = _rename(key, attention, VAE_ATTENTION)
        if ldm is not None:
            if ldm.endswith((".q.weight", ".k.weight", ".v.weight", ".proj_out.weight")):
                tensor = tensor.reshape(*tensor.shape, 1, 1)  # LDM's attention uses 1x1 convs
        else:
            ldm = _rename(key, vae_prefixes, VAE_RESNET) or key  # conv_in, conv_out, quant convs: same names
        out["first_stage_model." + ldm] = tensor
    return out


def hf_clip_keys(text_encoder, prefix: str) -> dict[str, torch.Tensor]:
    # SD 1.x and SDXL files hold HF CLIPTextModel keys (text_model.*); transformers 5 names them without text_model.
    return {prefix + (k if k.startswith("text_model.") else "text_model." + k): v for k, v in text_encoder.state_dict().items()}


def ldm_state_dict(text_encoder, unet, vae) -> dict[str, torch.Tensor]:
    out = {**ldm_unet(unet), **ldm_vae(vae), **hf_clip_keys(text_encoder, "cond_stage_model.transformer.")}
    return {k: v.contiguous() for k, v in out.items()}


def main() -> None:
    out = Path(sys.argv[1])
    torch.set_num_threads(1)
    tokenizer = CLIPTokenizer.from_pretrained(TOKENIZER)
    vocab = tokenizer.get_vocab()
    models = build_models(ModelSpec(seed=SEED), len(vocab), vocab["<|startoftext|>"], vocab["<|endoftext|>"])
    scheduler = PNDMScheduler.from_pretrained(SCHEDULER.parent)
    pipe = StableDiffusionPipeline(vae=models.vae, text_encoder=models.text_encoder, tokenizer=tokenizer, unet=models.unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    diffusers_dir = out / "diffusers"
    pipe.save_pretrained(diffusers_dir, safe_serialization=True)
    for f in TOKENIZER.iterdir():  # the SD repos' slow-tokenizer files (transformers 5 writes tokenizer.json only)
        shutil.copyfile(f, diffusers_dir / "tokenizer" / f.name)
    config_dir = out / "config"
    shutil.copytree(diffusers_dir, config_dir, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    checkpoint = out / "tiny-sd1.safetensors"
    save_file(ldm_state_dict(models.text_encoder, models.unet, models.vae), checkpoint.as_posix())

    from convert_lib.export import export_model
    from convert_lib.sources import load_diffusers_folder

    export_model(load_diffusers_folder(diffusers_dir), out / "onnx-from-folder")
    print(out)


if __name__ == "__main__":
    main()
