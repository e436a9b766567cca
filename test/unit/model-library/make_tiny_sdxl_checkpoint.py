#!/usr/bin/env python
"""Makes a single-file SDXL checkpoint (the sgm / A1111 / ComfyUI key layout) from the torch weights of a
tiny SDXL fixture, for the SDXL conversion test:

  OUT/<fixture>.safetensors  the fixture's weights under the original key names:
                             model.diffusion_model.*            U-Net (LDM UNetModel; add_embedding -> label_emb.0)
                             first_stage_model.*                VAE
                             conditioner.embedders.0.transformer.text_model.*   CLIP ViT-L (Hugging Face names)
                             conditioner.embedders.1.model.*    OpenCLIP bigG (open_clip names: fused
                                                                in_proj, text_projection [width, projection])
                             (a refiner: its bigG alone, as conditioner.embedders.0.model.*)
  OUT/config/                a diffusers-format folder of the same architecture without weights (the
                             --config the tiny architecture needs: it is no SDXL preset)

The weights are rebuilt with the seed the fixture was made with (native-models/tools/fixtures_lib/sdxl.py
build_sdxl_models) and checked against the committed ONNX fixture, so the converted folder must draw the
fixture's parity references (test/fixtures/parity/sdxl-cases.json, diffusers on those weights).
The key names are the inverse of diffusers' single-file conversion (loaders/single_file_utils.py:
convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint, convert_open_clip_checkpoint); a mistake shows
as a key from_single_file misses, or as a picture that differs from the reference.

Usage: make_tiny_sdxl_checkpoint.py OUT [tiny-sdxl | tiny-sdxl-inpaint | tiny-sdxl-refiner]
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, (REPO / "native-models" / "tools").as_posix())
sys.path.insert(0, HERE.as_posix())
from fixtures_lib.sdxl import (  # noqa: E402
    SdxlFolder,
    _pipeline,
    _tokenizers,
    build_sdxl_models,
)
from make_tiny_checkpoint import hf_clip_keys, ldm_unet, ldm_vae  # noqa: E402

MODELS = REPO / "test" / "fixtures" / "models"
# fixtures_lib.sdxl.build_sdxl_folders: (seed, U-Net input channels, refiner)
FIXTURES = {"tiny-sdxl": (7000, 4, False), "tiny-sdxl-inpaint": (7100, 9, False), "tiny-sdxl-refiner": (7300, 4, True)}
# open_clip's resblock names for the Hugging Face CLIP encoder layer's (convert_open_clip_checkpoint, inverted).
OPEN_CLIP_LAYER = [("self_attn.out_proj.", "attn.out_proj."), ("layer_norm1.", "ln_1."), ("layer_norm2.", "ln_2."),
                   ("mlp.fc1.", "mlp.c_fc."), ("mlp.fc2.", "mlp.c_proj.")]


def open_clip_keys(text_encoder_2, prefix: str) -> dict[str, torch.Tensor]:
    """CLIPTextModelWithProjection -> open_clip's text tower: q/k/v fused into in_proj_{weight,bias}, the
    projection stored transposed (open_clip computes x @ text_projection)."""
    state = {k.removeprefix("text_model."): v for k, v in text_encoder_2.state_dict().items()}
    out = {
        prefix + "token_embedding.weight": state.pop("embeddings.token_embedding.weight"),
        prefix + "positional_embedding": state.pop("embeddings.position_embedding.weight"),
        prefix + "ln_final.weight": state.pop("final_layer_norm.weight"),
        prefix + "ln_final.bias": state.pop("final_layer_norm.bias"),
        prefix + "text_projection": state.pop("text_projection.weight").T,
    }
    state.pop("embeddings.position_ids", None)
    for i in range(text_encoder_2.config.num_hidden_layers):
        layer, block = f"encoder.layers.{i}.", f"{prefix}transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            qkv = [state.pop(f"{layer}self_attn.{p}_proj.{kind}") for p in ("q", "k", "v")]
            out[f"{block}attn.in_proj_{kind}"] = torch.cat(qkv)
        for hf, oc in OPEN_CLIP_LAYER:
            for kind in ("weight", "bias"):
                out[block + oc + kind] = state.pop(layer + hf + kind)
    if state:
        raise SystemExit(f"no open_clip name for {sorted(state)}")
    return out


@torch.no_grad()
def check_against_fixture(models, fixture: Path) -> None:
    """The rebuilt U-Net and encoder 2 compute what the committed ONNX fixture computes."""
    g = torch.Generator().manual_seed(0)
    unet = models.unet
    time_ids = (unet.config.projection_class_embeddings_input_dim - models.text_encoder_2.config.projection_dim) // unet.config.addition_time_embed_dim
    feeds = {
        "sample": torch.randn(1, unet.config.in_channels, 8, 8, generator=g),
        "timestep": torch.tensor(500.0),
        "encoder_hidden_states": torch.randn(1, 77, unet.config.cross_attention_dim, generator=g),
        "text_embeds": torch.randn(1, models.text_encoder_2.config.projection_dim, generator=g),
        "time_ids": torch.tensor([[64.0, 64, 0, 0, 64, 64][:time_ids]]),
    }
    want = unet(feeds["sample"], feeds["timestep"], feeds["encoder_hidden_states"],
                added_cond_kwargs={"text_embeds": feeds["text_embeds"], "time_ids": feeds["time_ids"]}).sample.numpy()
    session = ort.InferenceSession((fixture / "unet" / "model.onnx").as_posix(), providers=["CPUExecutionProvider"])
    got = session.run(None, {k: v.numpy() for k, v in feeds.items()})[0]
    ids = torch.randint(0, models.text_encoder_2.config.vocab_size, (1, 77), generator=g)
    text = ort.InferenceSession((fixture / "text_encoder_2" / "model.onnx").as_posix(), providers=["CPUExecutionProvider"])
    pooled = text.run(["text_embeds"], {"input_ids": ids.numpy()})[0]
    diffs = [float(np.abs(got - want).max()), float(np.abs(pooled - models.text_encoder_2(ids).text_embeds.numpy()).max())]
    if max(diffs) > 1e-4:
        raise SystemExit(f"the rebuilt weights are not {fixture.name}'s (U-Net, encoder 2 differ by {diffs})")


def main() -> None:
    out = Path(sys.argv[1])
    name = sys.argv[2] if len(sys.argv) > 2 else "tiny-sdxl"
    seed, channels, refiner = FIXTURES[name]
    fixture = MODELS / name
    torch.set_num_threads(1)
    tokenizer_2 = json.loads((fixture / "tokenizer_2" / "vocab.json").read_text(encoding="utf-8"))
    vocab = SimpleNamespace(size=len(tokenizer_2), bos_id=tokenizer_2["<|startoftext|>"], eos_id=tokenizer_2["<|endoftext|>"])
    models = build_sdxl_models(vocab, seed, channels, refiner)
    check_against_fixture(models, fixture)

    state = {**ldm_unet(models.unet), **ldm_vae(models.vae)}
    if refiner:
        state.update(open_clip_keys(models.text_encoder_2, "conditioner.embedders.0.model."))
    else:
        state.update(hf_clip_keys(models.text_encoder, "conditioner.embedders.0.transformer."))
        state.update(open_clip_keys(models.text_encoder_2, "conditioner.embedders.1.model."))
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, (out / f"{name}.safetensors").as_posix())

    # The config folder: the torch pipeline's configs (no weights) with the fixture's tokenizer files.
    scheduler = json.loads((fixture / "scheduler" / "scheduler_config.json").read_text(encoding="utf-8"))
    folder = SdxlFolder(name, fixture, models, scheduler, refiner)
    cls = {"tiny-sdxl": "StableDiffusionXLPipeline", "tiny-sdxl-inpaint": "StableDiffusionXLInpaintPipeline", "tiny-sdxl-refiner": "StableDiffusionXLImg2ImgPipeline"}[name]
    import diffusers

    pipe = _pipeline(folder, getattr(diffusers, cls), tokenizers=_tokenizers(fixture, refiner))
    config = out / "config"
    pipe.save_config(config)
    for part in ("unet", "vae", "text_encoder", "text_encoder_2"):
        module = getattr(pipe, part)
        if module is not None:
            (module.save_config if hasattr(module, "save_config") else module.config.save_pretrained)(config / part)
    pipe.scheduler.save_config(config / "scheduler")
    for tok in ("tokenizer", "tokenizer_2"):
        if (fixture / tok).is_dir():
            shutil.copytree(fixture / tok, config / tok)
    print(out / f"{name}.safetensors")


if __name__ == "__main__":
    main()
