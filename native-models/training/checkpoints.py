"""Compact checkpoints committed to git (native-models/checkpoints/<name>/), so training carries on
across sessions whose work folders are wiped.

  python -m training.checkpoints pack     # work folder → committed files (fp16 weights + JSON metadata)
  python -m training.checkpoints pack --with-derived   # also the inpainting and layout U-Nets
  python -m training.checkpoints unpack   # committed files → work folder (training resumes from them)

What is kept, and why (size: the repository keeps every committed version):
- vae.safetensors: the finished VAE (fp16), with its config and latent scaling factor. The U-Net stages
  depend on this exact VAE, so it is frozen once done.
- text2img.safetensors: EMA weights (fp16) of the text encoder and U-Net, with configs and the step.
  No optimizer state (it would triple the size): on unpack the raw weights start from the EMA weights
  and AdamW restarts with a short warm-up, which costs a few hundred steps of re-adaptation.
- inpaint.safetensors / layout.safetensors (only with --with-derived): the EMA U-Net and the frozen text
  encoder that stage trained with (fp16), with the U-Net config, the step and the text-to-image snapshot
  it started from. By default they are not packed (each is another 10–15 MB per commit): they can be
  re-derived from the text-to-image U-Net, at the cost of training them again.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .common import DONE_FILE, atomic_save
from .config import NATIVE_MODELS_DIR, Config, add_common_args, load_config

CHECKPOINTS_DIR = NATIVE_MODELS_DIR / "checkpoints"


def fp16(state: dict[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    return {prefix + k: (v.half() if v.dtype == torch.float32 else v).contiguous() for k, v in state.items()}


def unprefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: (v.float() if v.dtype == torch.float16 else v) for k, v in state.items() if k.startswith(prefix)}


def pack(cfg: Config, out: Path, with_derived: bool = False) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    summary = {}
    vae_path = cfg.runs_dir / "vae" / "vae.pt"
    if vae_path.exists():
        saved = torch.load(vae_path, map_location="cpu", weights_only=False)
        save_file(fp16(saved["model"]), out / "vae.safetensors")
        done = json.loads((cfg.runs_dir / "vae" / DONE_FILE).read_text())
        (out / "vae.json").write_text(json.dumps({"config": saved["config"], "training": done}, indent=1) + "\n")
        summary["vae"] = done
    stage = cfg.runs_dir / "unet"
    source = stage / "unet.pt" if (stage / "unet.pt").exists() else stage / "state.pt"
    if source.exists():
        saved = torch.load(source, map_location="cpu", weights_only=False)
        if "unet_ema" in saved:  # a running stage: take the EMA weights
            unet_state, te_state = saved["unet_ema"]["shadow"], saved["te_ema"]["shadow"]
        else:
            unet_state, te_state = saved["unet"], saved["text_encoder"]
        save_file({**fp16(unet_state, "unet."), **fp16(te_state, "text_encoder.")}, out / "text2img.safetensors")
        meta = {"step": saved.get("step", saved.get("steps")), "vae_digest": saved.get("vae_digest"),
                "finished": source.name == "unet.pt", "config": {k: cfg[k] for k in ("unet", "text_encoder", "train_unet")}}
        (out / "text2img.json").write_text(json.dumps(meta, indent=1) + "\n")
        summary["text2img"] = {k: meta[k] for k in ("step", "finished")}
    for stage in DERIVED_STAGES if with_derived else ():
        packed = pack_derived(cfg, out, stage)
        if packed:
            summary[stage] = packed
    return summary


DERIVED_STAGES = ("inpaint", "layout")


def pack_derived(cfg: Config, out: Path, stage: str) -> dict | None:
    stage_dir = cfg.runs_dir / stage
    source = stage_dir / "unet.pt" if (stage_dir / "unet.pt").exists() else stage_dir / "state.pt"
    if not source.exists():
        return None
    saved = torch.load(source, map_location="cpu", weights_only=False)
    unet_state = saved["unet_ema"]["shadow"] if "unet_ema" in saved else saved["unet"]
    save_file({**fp16(unet_state, "unet."), **fp16(saved["text_encoder"], "text_encoder.")}, out / f"{stage}.safetensors")
    meta = {"step": saved.get("step", saved.get("steps")), "vae_digest": saved.get("vae_digest"),
            "finished": source.name == "unet.pt", "unet_config": saved["unet_config"],
            "text2img_source": saved.get("text2img_source"), "labels": saved.get("labels")}
    (out / f"{stage}.json").write_text(json.dumps(meta, indent=1) + "\n")
    return {k: meta[k] for k in ("step", "finished")}


def unpack_derived(cfg: Config, src: Path, stage: str) -> str | None:
    stage_dir = cfg.runs_dir / stage
    if not (src / f"{stage}.safetensors").exists() or (stage_dir / "state.pt").exists() or (stage_dir / DONE_FILE).exists():
        return None
    meta = json.loads((src / f"{stage}.json").read_text())
    weights = load_file(src / f"{stage}.safetensors")
    unet_state, te_state = unprefix(weights, "unet."), unprefix(weights, "text_encoder.")
    decay = cfg[{"inpaint": "train_inpaint", "layout": "train_layout"}[stage]]["ema_decay"]
    stage_dir.mkdir(parents=True, exist_ok=True)
    # Weights only (optimizer None): train_unet restarts AdamW with a warm-up, as for the text-to-image stage.
    atomic_save({"unet": unet_state, "text_encoder": te_state, "optimizer": None,
                 "unet_ema": {"decay": decay, "shadow": {k: v.clone() for k, v in unet_state.items()}},
                 "te_ema": {"decay": decay, "shadow": {k: v.clone() for k, v in te_state.items()}},
                 "rng": None, "np_rng": None, "step": meta["step"], "vae_digest": meta["vae_digest"],
                 "unet_config": meta["unet_config"], "text2img_source": meta["text2img_source"], "labels": meta["labels"]},
                stage_dir / "state.pt")
    return f"restored at step {meta['step']}"


def unpack(cfg: Config, src: Path) -> dict:
    """Restores the work folder from committed checkpoints (only what the work folder lacks)."""
    summary = {}
    vae_dir = cfg.runs_dir / "vae"
    if (src / "vae.safetensors").exists() and not (vae_dir / DONE_FILE).exists():
        meta = json.loads((src / "vae.json").read_text())
        vae_dir.mkdir(parents=True, exist_ok=True)
        atomic_save({"model": unprefix(load_file(src / "vae.safetensors"), ""), "config": meta["config"]}, vae_dir / "vae.pt")
        (vae_dir / DONE_FILE).write_text(json.dumps({**meta["training"], "restored_from": str(src)}, indent=1))
        summary["vae"] = "restored"
        if "decoder_finetune" in meta["training"]:
            # The packed VAE carries the fine-tuned decoder: the decoder stage is done too.
            decoder_dir = cfg.runs_dir / "vae_decoder"
            decoder_dir.mkdir(parents=True, exist_ok=True)
            (decoder_dir / DONE_FILE).write_text(json.dumps({**meta["training"]["decoder_finetune"], "restored_from": str(src)},
                                                            indent=1))
            summary["vae_decoder"] = "restored"
    unet_dir = cfg.runs_dir / "unet"
    if (src / "text2img.safetensors").exists() and not (unet_dir / "state.pt").exists() and not (unet_dir / DONE_FILE).exists():
        meta = json.loads((src / "text2img.json").read_text())
        weights = load_file(src / "text2img.safetensors")
        unet_state, te_state = unprefix(weights, "unet."), unprefix(weights, "text_encoder.")
        unet_dir.mkdir(parents=True, exist_ok=True)
        atomic_save({"unet": unet_state, "text_encoder": te_state, "optimizer": None,
                     "unet_ema": {"decay": cfg["train_unet"]["ema_decay"], "shadow": {k: v.clone() for k, v in unet_state.items()}},
                     "te_ema": {"decay": cfg["train_unet"]["ema_decay"], "shadow": {k: v.clone() for k, v in te_state.items()}},
                     "rng": None, "np_rng": None, "step": meta["step"], "vae_digest": meta["vae_digest"]}, unet_dir / "state.pt")
        summary["text2img"] = f"restored at step {meta['step']}"
    for stage in DERIVED_STAGES:
        restored = unpack_derived(cfg, src, stage)
        if restored:
            summary[stage] = restored
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_args(parser)
    parser.add_argument("action", choices=["pack", "unpack"])
    parser.add_argument("--dir", type=Path, default=None, help="checkpoint folder (default native-models/checkpoints/<name>)")
    parser.add_argument("--with-derived", action="store_true", help="pack: also the inpainting and layout U-Nets")
    args = parser.parse_args()
    cfg = load_config(args)
    folder = args.dir or (cfg.work_dir / "checkpoints" if cfg.toy else CHECKPOINTS_DIR / cfg.name)
    result = pack(cfg, folder, args.with_derived) if args.action == "pack" else unpack(cfg, folder)
    print(json.dumps({args.action: result, "dir": str(folder)}, indent=1))


if __name__ == "__main__":
    main()
