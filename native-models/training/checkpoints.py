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
- lcm.safetensors / lcm_inpaint.safetensors (with --with-derived or --lcm): the distilled U-Nets (the
  target network θ⁻ of training.train_lcm) as their difference from the teacher U-Net they were
  distilled from (the text-to-image / inpainting U-Net above, rounded to fp16): int8 per output channel
  with a float32 scale per channel (w = fp16(teacher) + q·scale), the few tensors the teacher lacks
  (the guidance projection) and the 1-D ones in fp16. About 5 MB per U-Net instead of 11 MB in fp16, so
  the periodic commits of a running distillation stay small; the rounding error is ≤ max|Δ|/254 per
  channel, far below fp16's on the weights themselves. The JSON keeps the teacher's digest: unpack skips
  a checkpoint whose teacher is not the one in the work folder.
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
    for stage in LCM_TEACHERS if with_derived else ():
        packed = pack_lcm(cfg, out, stage)
        if packed:
            summary[stage] = packed
    return summary


DERIVED_STAGES = ("inpaint", "layout")
# Each distillation stage and the stage whose U-Net is its teacher.
LCM_TEACHERS = {"lcm": "unet", "lcm_inpaint": "inpaint"}


def teacher_weights(cfg: Config, teacher_stage: str) -> dict[str, torch.Tensor] | None:
    """The teacher U-Net's EMA weights from the work folder (finished unet.pt or running state.pt)."""
    stage_dir = cfg.runs_dir / teacher_stage
    for name in ("unet.pt", "state.pt"):
        if (stage_dir / name).exists():
            saved = torch.load(stage_dir / name, map_location="cpu", weights_only=False)
            return saved["unet"] if name == "unet.pt" else saved["unet_ema"]["shadow"]
    return None


def pack_lcm(cfg: Config, out: Path, stage: str) -> dict | None:
    from .train_lcm import unet_digest
    stage_dir = cfg.runs_dir / stage
    source = stage_dir / "unet.pt" if (stage_dir / "unet.pt").exists() else stage_dir / "state.pt"
    teacher = teacher_weights(cfg, LCM_TEACHERS[stage])
    if not source.exists() or teacher is None:
        return None
    saved = torch.load(source, map_location="cpu", weights_only=False)
    finished = source.name == "unet.pt"
    weights = saved["unet"] if finished else saved["target"]
    tensors: dict[str, torch.Tensor] = {}
    for key, value in weights.items():
        base = teacher.get(key)
        if base is not None and base.shape == value.shape and value.dim() >= 2 and value.is_floating_point():
            rows = (value.float() - base.half().float()).reshape(value.shape[0], -1)
            scale = rows.abs().amax(1).clamp_min(1e-12) / 127
            tensors["delta." + key] = (rows / scale[:, None]).round().clamp(-127, 127).to(torch.int8).reshape(value.shape).contiguous()
            tensors["scale." + key] = scale.float().contiguous()
        else:
            tensors["full." + key] = (value.half() if value.dtype == torch.float32 else value).contiguous()
    save_file(tensors, out / f"{stage}.safetensors")
    meta = {"step": saved["steps"] if finished else saved["step"], "finished": finished, "vae_digest": saved.get("vae_digest"),
            "teacher_stage": LCM_TEACHERS[stage], "teacher_digest": saved.get("teacher_digest"), "teacher": saved.get("teacher"),
            "unet_config": saved["unet_config"], "encoding": "int8 delta from fp16(teacher) per output channel, see checkpoints.py",
            "config": cfg["train_lcm"]}
    if meta["teacher_digest"] != unet_digest(teacher):
        raise SystemExit(f"{source} was distilled from another teacher than {cfg.runs_dir / LCM_TEACHERS[stage]} holds")
    (out / f"{stage}.json").write_text(json.dumps(meta, indent=1) + "\n")
    return {k: meta[k] for k in ("step", "finished")}


def unpack_lcm(cfg: Config, src: Path, stage: str) -> str | None:
    from .train_lcm import unet_digest
    stage_dir = cfg.runs_dir / stage
    if not (src / f"{stage}.safetensors").exists() or (stage_dir / "state.pt").exists() or (stage_dir / DONE_FILE).exists():
        return None
    meta = json.loads((src / f"{stage}.json").read_text())
    teacher = teacher_weights(cfg, meta["teacher_stage"])
    if teacher is None or unet_digest(teacher) != meta["teacher_digest"]:
        return f"skipped: its teacher ({meta['teacher_stage']}, {meta['teacher_digest']}) is not in the work folder"
    packed = load_file(src / f"{stage}.safetensors")
    weights: dict[str, torch.Tensor] = {}
    for name, value in packed.items():
        kind, key = name.split(".", 1)
        if kind == "full":
            weights[key] = value.float() if value.dtype == torch.float16 else value
        elif kind == "delta":
            scale = packed["scale." + key].view(-1, *([1] * (value.dim() - 1)))
            weights[key] = teacher[key].half().float() + value.float() * scale
    stage_dir.mkdir(parents=True, exist_ok=True)
    # Weights only (optimizer None): train_lcm restarts AdamW with a warm-up; student and target both
    # start from the packed target network.
    atomic_save({"student": weights, "target": {k: v.clone() for k, v in weights.items()}, "optimizer": None, "rng": None,
                 "np_rng": None, "step": meta["step"], "vae_digest": meta["vae_digest"], "teacher_digest": meta["teacher_digest"],
                 "teacher": meta["teacher"], "unet_config": meta["unet_config"]}, stage_dir / "state.pt")
    return f"restored at step {meta['step']}"


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
    for stage in LCM_TEACHERS:  # after their teachers
        restored = unpack_lcm(cfg, src, stage)
        if restored:
            summary[stage] = restored
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_args(parser)
    parser.add_argument("action", choices=["pack", "unpack"])
    parser.add_argument("--dir", type=Path, default=None, help="checkpoint folder (default native-models/checkpoints/<name>)")
    parser.add_argument("--with-derived", action="store_true",
                        help="pack: also the inpainting, layout and distilled (LCM) U-Nets")
    parser.add_argument("--lcm", action="store_true", help="pack: only the distilled (LCM) U-Nets")
    args = parser.parse_args()
    cfg = load_config(args)
    folder = args.dir or (cfg.work_dir / "checkpoints" if cfg.toy else CHECKPOINTS_DIR / cfg.name)
    if args.action == "pack" and args.lcm:
        folder.mkdir(parents=True, exist_ok=True)
        result = {stage: pack_lcm(cfg, folder, stage) for stage in LCM_TEACHERS}
    else:
        result = pack(cfg, folder, args.with_derived) if args.action == "pack" else unpack(cfg, folder)
    print(json.dumps({args.action: result, "dir": str(folder)}, indent=1))


if __name__ == "__main__":
    main()
