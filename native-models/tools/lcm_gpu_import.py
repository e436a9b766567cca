"""Turns a distilled U-Net that tools/lcm_gpu_run.sh returned (<variant>.pt: the best-scoring target network,
fp16, with its step, teacher digest and settings) into a run folder of a scratch work folder, where the
usual commands take over; the real work folder's runs/lcm* are not touched.

  python tools/lcm_gpu_import.py --weights out/i1.pt [--scratch .work/emoji-ldm-gpu] [--force]

The scratch work folder links the rest (data, latent cache, runs/vae, unet, inpaint, layout; not the other
LCM stage, so nothing there writes into the source) to the source work folder, and holds runs/lcm or runs/lcm_inpaint/state.pt as
`checkpoints unpack` writes it (weights only, optimizer None). Then (printed at the end):
  python -m training.train_lcm --stage inpaint --work-dir SCRATCH --finalize        # unet.pt, done.json
  python -m training.checkpoints pack --lcm --work-dir SCRATCH --dir SCRATCH/checkpoints
  python -m training.export_onnx --work-dir SCRATCH --out-root SCRATCH/export
  EMOJI_LDM_EXPORT_ROOT=SCRATCH/export python -m training.evaluate --work-dir SCRATCH \
      --skip vae text inpaint layout diffusers speed grid --lcm inpaint
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from training.checkpoints import LCM_TEACHERS, teacher_weights  # noqa: E402
from training.common import atomic_save  # noqa: E402
from training.config import DEFAULT_CONFIG, Config  # noqa: E402
from training.train_lcm import STAGE_DIRS, unet_digest  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, required=True, help="a <variant>.pt from the device run")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--source", type=Path, default=None, help="the work folder to link (default: the config's)")
    parser.add_argument("--scratch", type=Path, default=None, help="the scratch work folder (default: <source>-gpu)")
    parser.add_argument("--force", action="store_true", help="replace the scratch folder's run of this stage")
    args = parser.parse_args()
    source_cfg = Config(args.config, toy=False, work_dir=args.source)
    source = source_cfg.work_dir.resolve()
    scratch = (args.scratch or source.with_name(source.name + "-gpu")).resolve()
    saved = torch.load(args.weights, map_location="cpu", weights_only=False)
    in_channels = saved["unet_config"]["in_channels"]
    stage = "inpaint" if in_channels > saved["unet_config"]["out_channels"] else "text2img"
    run_name = STAGE_DIRS[stage]

    (scratch / "runs").mkdir(parents=True, exist_ok=True)
    for name in ("data",):
        link = scratch / name
        if not link.exists():
            link.symlink_to(source / name, target_is_directory=True)
    for entry in (source / "runs").iterdir():
        link = scratch / "runs" / entry.name
        # Not the LCM runs: a later --finalize of the other stage must not write into the source folder.
        if entry.name in STAGE_DIRS.values() or link.exists() or link.is_symlink():
            continue
        link.symlink_to(entry, target_is_directory=entry.is_dir())
    run_dir = scratch / "runs" / run_name
    if run_dir.is_symlink():
        run_dir.unlink()
    if run_dir.exists():
        if not args.force:
            raise SystemExit(f"{run_dir} exists (pass --force to replace it)")
        shutil.rmtree(run_dir)
    run_dir.mkdir()

    cfg = Config(args.config, toy=False, work_dir=scratch)
    teacher = teacher_weights(cfg, LCM_TEACHERS[run_name])
    if teacher is None or unet_digest(teacher) != saved["teacher_digest"]:
        raise SystemExit(f"{args.weights} was distilled from another teacher than {source / 'runs' / LCM_TEACHERS[run_name]} holds")
    weights = {k: v.float() if v.is_floating_point() else v for k, v in saved["unet"].items()}
    atomic_save({"student": weights, "target": {k: v.clone() for k, v in weights.items()}, "optimizer": None, "rng": None,
                 "np_rng": None, "step": saved["steps"], "vae_digest": saved["vae_digest"], "teacher_digest": saved["teacher_digest"],
                 "teacher": saved["teacher"], "unet_config": saved["unet_config"]}, run_dir / "state.pt")
    (run_dir / "imported.json").write_text(json.dumps({"from": str(args.weights), "step": saved["steps"], "proxy": saved.get("proxy"),
                                                       "train_lcm": saved.get("train_lcm")}, indent=1) + "\n")
    s = str(scratch)
    print(json.dumps({"stage": stage, "run": str(run_dir), "step": saved["steps"], "proxy": saved.get("proxy")}, indent=1))
    steps = [f"python -m training.train_lcm --stage {stage} --work-dir {s} --finalize",
             f"python -m training.checkpoints pack --lcm --work-dir {s} --dir {s}/checkpoints",
             f"python -m training.export_onnx --work-dir {s} --out-root {s}/export"]
    if stage == "text2img":  # the LCM text evaluation compares with the teacher's text fidelity
        steps.append(f"cp emoji-ldm/eval.json {s}/export/emoji-ldm/eval.json")
    steps.append(f"EMOJI_LDM_EXPORT_ROOT={s}/export python -m training.evaluate --work-dir {s} "
                 f"--skip vae text inpaint layout diffusers speed grid --lcm {'inpaint' if stage == 'inpaint' else 'text'}")
    print("next (in native-models/):\n  " + "\n  ".join(steps))

if __name__ == "__main__":
    main()
