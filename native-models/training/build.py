"""Runs the whole chain: prepare data → train VAE → fine-tune its decoder → train text encoder + U-Net →
train inpainting U-Net → train layout U-Net → distil the text-to-image and inpainting U-Nets into latent
consistency models → export ONNX (verified with onnxruntime) → evaluate.

  python -m training.build            # full size; every stage resumes where it stopped
  python -m training.build --toy      # toy size in a fresh work folder (CI smoke test, a few minutes)

Each stage is its own process (python -m training.<stage>), so a stop at any point (Ctrl-C, SIGTERM,
--max-minutes) leaves a checkpoint and rerunning the same command carries on.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time

from .build_tokenizer import TOKENIZER_DIR
from .config import NATIVE_MODELS_DIR, add_common_args, load_config


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
    runs = cfg.runs_dir
    # (name, module and arguments, the file that marks the stage finished; None: runs every time)
    stages = [
        ("prepare data", ["training.prepare_data"], cfg.data_dir / "records.json"),
        ("train VAE", ["training.train_vae", *budget], runs / "vae" / "done.json"),
        ("fine-tune VAE decoder", ["training.train_vae", "--decoder-only", *budget], runs / "vae_decoder" / "done.json"),
        ("train text encoder + U-Net", ["training.train_unet", "--stage", "text2img", *budget], runs / "unet" / "done.json"),
        ("train inpainting U-Net", ["training.train_unet", "--stage", "inpaint", *budget], runs / "inpaint" / "done.json"),
        ("train layout U-Net", ["training.train_unet", "--stage", "layout", *budget], runs / "layout" / "done.json"),
        ("distil LCM (text-to-image)", ["training.train_lcm", "--stage", "text2img", *budget], runs / "lcm" / "done.json"),
        ("distil LCM (inpainting)", ["training.train_lcm", "--stage", "inpaint", *budget], runs / "lcm_inpaint" / "done.json"),
        ("export ONNX", ["training.export_onnx"], None),
        ("evaluate", ["training.evaluate"], None),
    ]
    started = time.monotonic()
    for name, module_args, marker in stages:
        if marker is not None and marker.exists():
            print(f"== {name}: done already", flush=True)
            continue
        print(f"== {name}", flush=True)
        stage_started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", *module_args, *common], cwd=NATIVE_MODELS_DIR)
        print(f"== {name}: {time.monotonic() - stage_started:.0f} s", flush=True)
        if result.returncode != 0:
            raise SystemExit(f"stage '{name}' failed with exit code {result.returncode}")
        if marker is not None and not marker.exists():
            print(f"== {name}: stopped before the end (time budget or signal); rerun to resume", flush=True)
            return
    print(f"== chain finished in {time.monotonic() - started:.0f} s; models in {cfg.export_dir}, {cfg.inpaint_export_dir}, "
          f"{cfg.layout_export_dir}, {cfg.lcm_export_dir} and {cfg.inpaint_lcm_export_dir}", flush=True)


if __name__ == "__main__":
    main()
