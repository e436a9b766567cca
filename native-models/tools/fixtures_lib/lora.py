"""LoRA fixtures: `models/tiny-sd1-named/`, tiny LoRA files in `loras/`, and parity references.

`tiny-sd1-named` holds tiny-sd1's weights (same spec and seed) exported by the diffusers convert script
with the names torch >= 1.13 gives (node `/down_blocks.0/attentions.0/transformer_blocks.0/attn1/to_q/MatMul`,
folded transposed Linear weights `onnx::MatMul_<n>`), as every SD folder people have today carries them.
The other fixtures shorten those names (onnx_names.py), which leaves nothing to find a LoRA's module by.

The LoRA layers are made by peft on the very torch modules that were exported (seeded random weights, both
A and B, so every module moves the picture), then written the ways people have them:

* `tiny-kohya.safetensors`: kohya-ss sd-scripts naming (`lora_unet_…`/`lora_te_…`, `lora_down`/`lora_up`,
  one `alpha` per module), U-Net attention + transformer projections and the text encoder, rank 4,
  alpha 2 (scale 0.5), fp16 tensors, with kohya's `ss_*` metadata (`ss_tag_frequency` included);
* `tiny-peft.safetensors`: diffusers `save_lora_weights` on peft state dicts (`unet.….lora_A.weight` /
  `text_encoder.….lora_B.weight`), rank 2, lora_alpha 3, the LoraConfig in `lora_adapter_metadata`, fp32;
* `tiny-locon.safetensors`: kohya LoCon (conv LoRA): the resnets' 3×3 conv1/conv2 (3×3 `lora_down`, 1×1
  `lora_up`), 1×1 conv_shortcut, time_emb_proj (a Gemm in ONNX), the down/upsampler convs, rank 4,
  alpha 1, bf16 tensors;
* `tiny-sdxl-kohya.safetensors`: a LoRA in SDXL's kohya naming (`lora_te1_`/`lora_te2_`, LDM U-Net block
  names), for the "other family" refusal;
* `lcm-lora-tiny.safetensors`: laid out as latent-consistency/lcm-lora-sdv1-5's `pytorch_lora_weights.safetensors`
  (diffusers' train_lcm_distill_lora_sd_wds.py: peft LoRA with lora_alpha = rank on the attention, transformer
  projection, resnet conv1/conv2/conv_shortcut/time_emb_proj and down/upsampler convs of the U-Net only, saved
  with kohya keys over diffusers module paths: `lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight`,
  `.lora_up.weight`, `.alpha`), fp16, no `ss_*` metadata; rank 8 here (64 in the real file).

References: the torch StableDiffusionPipeline on the exported modules, the LoRA files loaded by diffusers
(`load_lora_weights`) and fused (`fuse_lora(lora_scale=w)`), from the shared initial latents. The LCM-LoRA
references run it as its model card does: `LCMScheduler.from_config(pipe.scheduler.config)`, 4 steps,
guidance 1 and 2, with the LCM step noises replayed from `parity/lcm-step-noises.npy` (lcm-lora-cases.json).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import peft
import torch
import transformers.integrations.peft as transformers_peft
from diffusers import LCMScheduler, PNDMScheduler, StableDiffusionPipeline
from diffusers.schedulers import scheduling_lcm
from peft import LoraConfig, inject_adapter_in_model
from peft.utils import get_peft_model_state_dict
from safetensors.torch import save_file
from transformers import CLIPTokenizer

from .folders import SD15_SCHEDULER_CONFIG, BuiltFolder, _diffusers_script_folder
from .parity import LATENTS_FILE, LCM_NOISES_FILE, _ReplayNoise, _save_image, _stats, parity_case
from .tiny_models import IMAGE_SIZE, ModelSpec
from .tokenizer_files import TinyVocabulary

FOLDER = "tiny-sd1-named"
SEED = 1000  # tiny-sd1's
LORA_DIR = "loras"
CASES_FILE = "lora-cases.json"
PROMPT = "a red apple"
NEGATIVE = ""
STEPS = 8
CFG = 7.5
LORA_SEED = 9000

UNET_ATTENTION_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2", "proj_in", "proj_out"]
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]
# peft matches a string target_modules as a full regex on the module path.
LOCON_TARGETS = r".*(resnets\.\d+\.(conv1|conv2|conv_shortcut|time_emb_proj)|(downsamplers|upsamplers)\.0\.conv)"

# LCM-LoRA (train_lcm_distill_lora_sd_wds.py's target_modules): attention, transformer projections, resnets
# and the down/upsampler convs.
LCM_LORA_TARGETS = (
    r".*(attn[12]\.(to_q|to_k|to_v|to_out\.0)|ff\.net\.(0\.proj|2)|attentions\.\d+\.(proj_in|proj_out)"
    r"|resnets\.\d+\.(conv1|conv2|conv_shortcut|time_emb_proj)|(downsamplers|upsamplers)\.0\.conv)"
)
LCM_LORA = "lcm-lora-tiny"
LCM_LORA_CASES_FILE = "lcm-lora-cases.json"
LCM_LORA_STEPS = 4

# transformers 5.24 asks for peft >= 0.22.0 before its adapter methods (which diffusers' load_lora_weights
# uses for the text encoder), a version not on PyPI (latest 0.21.2, pinned). The methods it calls
# (inject_adapter_in_model, set_peft_model_state_dict) are in 0.21, so accept the pinned release.
transformers_peft.MIN_PEFT_VERSION = peft.__version__

# Each LoRA's effect on the picture must be visible (mean |Δ| in 8-bit levels at weight 1), or parity
# would prove little; and it must not wash the picture out.
MIN_EFFECT = 2.0


def build_named_folder(out: Path, vocab: TinyVocabulary) -> BuiltFolder:
    return _diffusers_script_folder(
        FOLDER, out, vocab, ModelSpec(seed=SEED), SD15_SCHEDULER_CONFIG, True, compact_names=False
    )


def _randomize(module: torch.nn.Module, generator: torch.Generator, gain: float) -> None:
    """peft starts lora_B at zero (a no-op); give A and B seeded random values instead."""
    with torch.no_grad():
        for name, p in sorted(module.named_parameters()):
            if "lora_A" in name or "lora_B" in name:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=generator) * gain / fan_in**0.5)


def _peft_layers(model: torch.nn.Module, config: LoraConfig, generator: torch.Generator, gain: float) -> dict:
    """Adds the adapter to a copy of `model` and returns its peft state dict (`<path>.lora_A.weight`)."""
    model = copy.deepcopy(model)
    inject_adapter_in_model(config, model)
    _randomize(model, generator, gain)
    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}


# transformers 5 flattened CLIPTextModel (`encoder.layers.0…`); the files people have, and the ONNX text
# encoders of the folders they have, come from transformers 4, whose path is `text_model.encoder.layers.0…`.
TEXT_MODEL_PREFIX = "text_model."


def _text_model_paths(layers: dict) -> dict:
    return {k if k.startswith(TEXT_MODEL_PREFIX) else TEXT_MODEL_PREFIX + k: v for k, v in layers.items()}


def _kohya(layers: dict, prefix: str, alpha: float, dtype: torch.dtype) -> dict:
    """peft keys → kohya-ss: `lora_unet_<module path with every . as _>.lora_down.weight`, + `.alpha`."""
    out = {}
    for key, value in layers.items():
        module, kind = key.rsplit(".lora_", 1)
        name = f"{prefix}_{module.replace('.', '_')}"
        part = "lora_down" if kind.startswith("A") else "lora_up"
        out[f"{name}.{part}.weight"] = value.to(dtype).contiguous()
        out[f"{name}.alpha"] = torch.tensor(alpha, dtype=dtype)
    return out


def _kohya_metadata(rank: int, alpha: float, tags: dict) -> dict:
    """The `ss_*` keys sd-scripts writes (train_network.py), the ones an app reads."""
    return {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(rank),
        "ss_network_alpha": str(alpha),
        "ss_base_model_version": "sd_v1",
        "ss_sd_model_name": "tiny-sd1",
        "ss_v2": "False",
        "ss_tag_frequency": json.dumps(tags),
        "ss_output_name": "tiny",
    }


def make_loras(folder: BuiltFolder, lora_dir: Path) -> dict[str, Path]:
    lora_dir.mkdir(parents=True, exist_ok=True)
    models = folder.models
    generator = torch.Generator().manual_seed(LORA_SEED)
    files = {}

    # kohya: U-Net attention + text encoder, rank 4, alpha 2, fp16.
    rank, alpha = 4, 2.0
    unet = _peft_layers(models.unet, LoraConfig(r=rank, lora_alpha=rank, target_modules=UNET_ATTENTION_TARGETS), generator, 2.0)
    text = _peft_layers(models.text_encoder, LoraConfig(r=rank, lora_alpha=rank, target_modules=TEXT_TARGETS), generator, 2.0)
    tensors = {
        **_kohya(unet, "lora_unet", alpha, torch.float16),
        **_kohya(_text_model_paths(text), "lora_te", alpha, torch.float16),
    }
    tags = {"10_tinychar": {"tinychar": 10, "red apple": 4, "smiling": 2}}
    files["tiny-kohya"] = lora_dir / "tiny-kohya.safetensors"
    save_file(tensors, files["tiny-kohya"].as_posix(), metadata=_kohya_metadata(rank, alpha, tags))

    # peft / diffusers: rank 2, lora_alpha 3, fp32, LoraConfig in the metadata.
    unet_config = LoraConfig(r=2, lora_alpha=3, target_modules=["to_q", "to_v", "to_out.0", "ff.net.2"])
    text_config = LoraConfig(r=2, lora_alpha=3, target_modules=["q_proj", "v_proj", "fc2"])
    unet = _peft_layers(models.unet, unet_config, generator, 2.0)
    text = _peft_layers(models.text_encoder, text_config, generator, 2.0)
    StableDiffusionPipeline.save_lora_weights(
        lora_dir,
        unet_lora_layers=unet,
        text_encoder_lora_layers=_text_model_paths(text),
        unet_lora_adapter_metadata=unet_config.to_dict(),
        text_encoder_lora_adapter_metadata=text_config.to_dict(),
        weight_name="tiny-peft.safetensors",
    )
    files["tiny-peft"] = lora_dir / "tiny-peft.safetensors"

    # LoCon: conv layers (3×3 down, 1×1 up), time_emb_proj, samplers; rank 4, alpha 1, bf16.
    rank, alpha = 4, 1.0
    unet = _peft_layers(models.unet, LoraConfig(r=rank, lora_alpha=rank, target_modules=LOCON_TARGETS), generator, 2.0)
    tensors = _kohya(unet, "lora_unet", alpha, torch.bfloat16)
    meta = {**_kohya_metadata(rank, alpha, {}), "ss_network_module": "lycoris.kohya", "ss_network_args": json.dumps({"conv_dim": "4", "conv_alpha": "1", "algo": "locon"})}
    del meta["ss_tag_frequency"]
    files["tiny-locon"] = lora_dir / "tiny-locon.safetensors"
    save_file(tensors, files["tiny-locon"].as_posix(), metadata=meta)

    # SDXL naming (another family): two text encoders and an LDM-named U-Net block.
    g = torch.Generator().manual_seed(LORA_SEED + 1)
    xl = {}
    for name, (out_f, in_f) in {
        "lora_te1_text_model_encoder_layers_0_self_attn_q_proj": (768, 768),
        "lora_te2_text_model_encoder_layers_0_self_attn_q_proj": (1280, 1280),
        "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q": (640, 640),
    }.items():
        xl[f"{name}.lora_down.weight"] = (torch.randn(2, in_f, generator=g) * 0.01).half()
        xl[f"{name}.lora_up.weight"] = (torch.randn(out_f, 2, generator=g) * 0.01).half()
        xl[f"{name}.alpha"] = torch.tensor(2.0, dtype=torch.float16)
    files["tiny-sdxl-kohya"] = lora_dir / "tiny-sdxl-kohya.safetensors"
    save_file(xl, files["tiny-sdxl-kohya"].as_posix(), metadata={"ss_base_model_version": "sdxl_base_v1-0"})

    # LCM-LoRA layout: U-Net only, lora_alpha = rank (scale 1), kohya keys over diffusers paths, fp16.
    # Its own generator, so the files above stay the same bytes.
    rank = 8
    g = torch.Generator().manual_seed(LORA_SEED + 2)
    unet = _peft_layers(models.unet, LoraConfig(r=rank, lora_alpha=rank, target_modules=LCM_LORA_TARGETS), g, 1.5)
    files[LCM_LORA] = lora_dir / f"{LCM_LORA}.safetensors"
    save_file(_kohya(unet, "lora_unet", float(rank), torch.float16), files[LCM_LORA].as_posix(), metadata={"format": "pt"})
    return files


def _keys(file: Path) -> list[str]:
    from safetensors import safe_open

    with safe_open(file.as_posix(), "pt") as f:
        return list(f.keys())


@torch.no_grad()
def _render(
    folder: BuiltFolder,
    loras: list[tuple[Path, float]],
    latents: np.ndarray,
    *,
    lcm_noises: np.ndarray | None = None,
    steps: int = STEPS,
    cfg: float = CFG,
):
    """The torch pipeline on copies of the exported modules, each LoRA fused at its weight in turn; with
    `lcm_noises`, on LCMScheduler.from_config(the folder's config) with those step noises replayed."""
    models = folder.models
    tokenizer = CLIPTokenizer.from_pretrained(folder.root / "tokenizer")
    pipe = StableDiffusionPipeline(
        vae=models.vae,
        text_encoder=copy.deepcopy(models.text_encoder),
        tokenizer=tokenizer,
        unet=copy.deepcopy(models.unet),
        scheduler=(LCMScheduler if lcm_noises is not None else PNDMScheduler).from_config(SD15_SCHEDULER_CONFIG),
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    for i, (file, weight) in enumerate(loras):
        pipe.load_lora_weights(file.parent.as_posix(), weight_name=file.name, adapter_name=f"l{i}")
        pipe.fuse_lora(lora_scale=weight, adapter_names=[f"l{i}"])
        pipe.unload_lora_weights()  # keeps the fused weights
        # diffusers skips modules it cannot place with a log line only: check every part was fused.
        for part, original in (("unet", models.unet), ("text_encoder", models.text_encoder)):
            wanted = any(k.startswith("lora_te" if part == "text_encoder" else "lora_unet") or k.startswith(part + ".") for k in _keys(file))
            # Not strict: only whether any weight moved matters, even if a loader left an extra buffer behind.
            changed = any(not torch.equal(a, b) for a, b in zip(getattr(pipe, part).state_dict().values(), original.state_dict().values(), strict=False))
            if wanted and not changed:
                raise AssertionError(f"{file.name}: diffusers fused nothing into the {part}")
    replay = _ReplayNoise(lcm_noises) if lcm_noises is not None else None
    original_randn = scheduling_lcm.randn_tensor
    if replay:
        scheduling_lcm.randn_tensor = replay
    try:
        image = pipe(
            prompt=PROMPT,
            negative_prompt=NEGATIVE,
            height=IMAGE_SIZE,
            width=IMAGE_SIZE,
            num_inference_steps=steps,
            guidance_scale=cfg,
            latents=torch.from_numpy(latents.copy()),
            output_type="np",
        ).images[0]
    finally:
        scheduling_lcm.randn_tensor = original_randn
    if replay and replay.used != steps - 1:
        raise AssertionError(f"LCM used {replay.used} replayed noises, expected {steps - 1}")
    return image, pipe.scheduler, tokenizer


CASES = [
    ("tiny-sd1-named-kohya-1", [("tiny-kohya", 1.0)]),
    ("tiny-sd1-named-kohya-0.5", [("tiny-kohya", 0.5)]),
    ("tiny-sd1-named-peft-1", [("tiny-peft", 1.0)]),
    ("tiny-sd1-named-locon-1", [("tiny-locon", 1.0)]),
    ("tiny-sd1-named-kohya-0.5-locon-0.8", [("tiny-kohya", 0.5), ("tiny-locon", 0.8)]),
]


def make_lora_parity(folder: BuiltFolder, files: dict[str, Path], parity: Path, fixtures_root: Path) -> list[dict]:
    latents = np.load(parity / LATENTS_FILE)
    base, _, _ = _render(folder, [], latents)
    cases = []
    for name, loras in CASES:
        image, scheduler, tokenizer = _render(folder, [(files[n], w) for n, w in loras], latents)
        effect = float(np.abs(image * 255 - base * 255).mean())
        print(f"parity {name:36s} {_stats(image)}; vs no LoRA: mean {effect:.1f}/255")
        if effect < MIN_EFFECT:
            raise AssertionError(f"{name}: the LoRA barely changes the image ({effect:.2f}/255)")
        case = parity_case(
            name=name,
            model=folder.root.relative_to(fixtures_root).as_posix(),
            pipeline="diffusers StableDiffusionPipeline (torch, the exported weights), load_lora_weights + fuse_lora(lora_scale=weight) per LoRA",
            prompt=PROMPT,
            negative=NEGATIVE,
            steps=STEPS,
            cfg=CFG,
            sampler="pndm",
            inputs={"loras": [{"name": n, "file": f"{LORA_DIR}/{files[n].name}", "weight": w} for n, w in loras]},
            reference=_save_image(parity, name, image),
            tokenizer=tokenizer,
            scheduler=scheduler,
        )
        cases.append(case)
    (parity / CASES_FILE).write_text(json.dumps(cases, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    make_lcm_lora_parity(folder, files, parity, fixtures_root)
    return cases


LCM_LORA_CASES = [(f"tiny-sd1-named-lcm-lora-cfg{cfg:g}", cfg) for cfg in (1.0, 2.0)]


def make_lcm_lora_parity(folder: BuiltFolder, files: dict[str, Path], parity: Path, fixtures_root: Path) -> list[dict]:
    """LCM-LoRA as its users run it: LCMScheduler, 4 steps, guidance 1 (no CFG batch) and 2 (CFG)."""
    latents = np.load(parity / LATENTS_FILE)
    noises = np.load(parity / LCM_NOISES_FILE)[: LCM_LORA_STEPS - 1]
    cases = []
    for name, cfg in LCM_LORA_CASES:
        lcm = dict(lcm_noises=noises, steps=LCM_LORA_STEPS, cfg=cfg)
        base, _, _ = _render(folder, [], latents, **lcm)
        image, scheduler, tokenizer = _render(folder, [(files[LCM_LORA], 1.0)], latents, **lcm)
        effect = float(np.abs(image * 255 - base * 255).mean())
        print(f"parity {name:36s} {_stats(image)}; vs no LoRA: mean {effect:.1f}/255")
        if effect < MIN_EFFECT:
            raise AssertionError(f"{name}: the LoRA barely changes the image ({effect:.2f}/255)")
        case = parity_case(
            name=name,
            model=folder.root.relative_to(fixtures_root).as_posix(),
            pipeline="diffusers StableDiffusionPipeline (torch, the exported weights), LCMScheduler.from_config, load_lora_weights + fuse_lora(lora_scale=1)",
            prompt=PROMPT,
            negative=NEGATIVE,
            steps=LCM_LORA_STEPS,
            cfg=cfg,
            sampler="lcm",
            inputs={"loras": [{"name": LCM_LORA, "file": f"{LORA_DIR}/{files[LCM_LORA].name}", "weight": 1.0}], "step_noises": LCM_NOISES_FILE},
            reference=_save_image(parity, name, image),
            tokenizer=tokenizer,
            scheduler=scheduler,
        )
        cases.append(case)
    (parity / LCM_LORA_CASES_FILE).write_text(json.dumps(cases, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return cases
