"""Runs the whole chain: prepare data → train VAE → fine-tune its decoder → train text encoder + U-Net →
train inpainting U-Net → train layout U-Net → export ONNX (verified with onnxruntime) → evaluate.

  python -m training.build            # full size; every stage resumes where it stopped
  python -m training.build --toy      # toy size in a fresh work folder (CI smoke test, a few minutes)

Each stage is its own process (python -m training.<stage>), so a stop at any point (Ctrl-C, SIGTERM,
--max-minutes) leaves a checkpoint and rerunning the same command carries on.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time

from .build_tokenizer import TOKENIZER_DIR
from .config import NATIVE_MODELS_DIR, add_common_args, load_config


def decoder_finetuned(cfg) -> bool:
    """The decoder fine-tune is done when its stage says so, or when the VAE restored from the committed
    checkpoint already carries it (vae.json's training summary has "decoder_finetune")."""
    if (cfg.runs_dir / "vae_decoder" / "done.json").exists():
        return True
    vae_done = cfg.runs_dir / "vae" / "done.json"
    return vae_done.exists() and "decoder_finetune" in json.loads(vae_done.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_args(parser)
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="time budget per training stage for this invocation (resume later)")
    parser.add_argument("--keep-toy", action="store_true", help="with --toy: reuse the toy work folder")
    parser.add_argument("--from-scratch", action="store_true",
                        help="ignore the committed checkpoints (native-models/checkpoints/) and train every stage anew")
    args = parser.parse_args()
    cfg = load_config(args)
    if cfg.toy and not args.keep_toy:
        shutil.rmtree(cfg.work_dir, ignore_errors=True)
    common = ["--config", str(args.config)] + (["--toy"] if args.toy else []) + \
             (["--work-dir", str(args.work_dir)] if args.work_dir else [])
    budget = ["--max-minutes", str(args.max_minutes)] if args.max_minutes else []
    if not (TOKENIZER_DIR / cfg.name / "vocab.json").exists():
        raise SystemExit(f"missing tokenizer files in {TOKENIZER_DIR / cfg.name}; build them with "
                         "python -m training.build_tokenizer --clip-dir <folder with CLIP's vocab.json and merges.txt>")
    if not args.toy and not args.from_scratch:
        # Carry on from the committed checkpoints when the work folder lacks them (a fresh clone).
        subprocess.run([sys.executable, "-m", "training.checkpoints", "unpack", *common], cwd=NATIVE_MODELS_DIR, check=True)
    stages = [
        ("prepare data", ["training.prepare_data"], (cfg.data_dir / "records.json").exists()),
        ("train VAE", ["training.train_vae", *budget], (cfg.runs_dir / "vae" / "done.json").exists()),
        ("fine-tune VAE decoder", ["training.train_vae", "--decoder-only", *budget], decoder_finetuned(cfg)),
        ("train text encoder + U-Net", ["training.train_unet", "--stage", "text2img", *budget],
         (cfg.runs_dir / "unet" / "done.json").exists()),
        ("train inpainting U-Net", ["training.train_unet", "--stage", "inpaint", *budget],
         (cfg.runs_dir / "inpaint" / "done.json").exists()),
        ("train layout U-Net", ["training.train_unet", "--stage", "layout", *budget],
         (cfg.runs_dir / "layout" / "done.json").exists()),
        ("export ONNX", ["training.export_onnx"], False),
        ("evaluate", ["training.evaluate"], False),
    ]
    started = time.monotonic()
    for name, module_args, done in stages:
        if done:
            print(f"== {name}: done already", flush=True)
            continue
        print(f"== {name}", flush=True)
        stage_started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", *module_args, *common], cwd=NATIVE_MODELS_DIR)
        print(f"== {name}: {time.monotonic() - stage_started:.0f} s", flush=True)
        if result.returncode != 0:
            raise SystemExit(f"stage '{name}' failed with exit code {result.returncode}")
        stage_done = {"train VAE": cfg.runs_dir / "vae" / "done.json",
                      "fine-tune VAE decoder": cfg.runs_dir / "vae_decoder" / "done.json",
                      "train text encoder + U-Net": cfg.runs_dir / "unet" / "done.json",
                      "train inpainting U-Net": cfg.runs_dir / "inpaint" / "done.json",
                      "train layout U-Net": cfg.runs_dir / "layout" / "done.json"}.get(name)
        if stage_done is not None and not stage_done.exists():
            print(f"== {name}: stopped before the end (time budget or signal); rerun to resume", flush=True)
            return
    print(f"== chain finished in {time.monotonic() - started:.0f} s; models in {cfg.export_dir}, {cfg.inpaint_export_dir} "
          f"and {cfg.layout_export_dir}", flush=True)


if __name__ == "__main__":
    main()
