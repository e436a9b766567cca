#!/usr/bin/env python
"""Convert a Stable Diffusion 1.x/2.x or SDXL model to the ONNX folder Latent Studio opens (the optimum layout).

Input, either:
  * a diffusers model folder (model_index.json, unet/, vae/, text_encoder/ (and text_encoder_2/ for
    SDXL), tokenizer/, scheduler/ with torch weights), or
  * a single-file .safetensors checkpoint (the CompVis/A1111 layout, and sgm's for SDXL, as A1111,
    ComfyUI and model sites share them). Its architecture is read from the weights' shapes (SD 1.x or
    2.x, inpainting or not; SDXL base, inpainting or refiner; see convert_lib/presets.py); SD 2.x is
    taken as 768-v unless --prediction-type epsilon. Anything else needs --config: a diffusers-format
    folder of the same architecture (its configs, tokenizers and scheduler are used; its weights, if
    any, are not). SDXL folders get both text encoders with every hidden state, and the U-Net's
    text_embeds and time_ids inputs, as optimum exports them.
Conversion is offline: nothing is downloaded (HF_HUB_OFFLINE=1; see convert_lib/sources.py).

Output: OUT, written to a temp folder beside it and renamed into place when complete and checked
(every submodel is run in onnxruntime and compared with torch). Then import OUT in the studio.

--lora FILE[:WEIGHT] (repeatable) bakes a LoRA into the converted weights (diffusers fuse_lora; weight
default 1), for those who want a fixed copy instead of <lora:name:weight> at run time (SD 1.x/2.x).

Usage (from the repo root; the venv is made by native-models/tools/setup-venv.sh):
  native-models/.venv/bin/python native-models/tools/convert.py SOURCE OUT [--fp16] [--config DIR]
      [--prediction-type epsilon|v_prediction] [--lora FILE[:WEIGHT]]… [--dry-run]

Prints one JSON line: what was done (or, with --dry-run, what would be done) and the ONNX-vs-torch check.

Exit status: 0 done, 2 a problem with the input (one line on stderr), 1 anything else (a bug).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, Path(__file__).resolve().parent.as_posix())

from convert_lib.lora import fuse_loras, parse_lora_arg  # noqa: E402
from convert_lib.sources import ConversionError, load_diffusers_folder, load_single_file, plan_single_file  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a diffusers model folder or a .safetensors checkpoint")
    parser.add_argument("out", type=Path, help="the ONNX model folder to write (must not exist)")
    parser.add_argument("--config", type=Path, default=None, help="for a .safetensors file: a diffusers-format folder of the same architecture")
    parser.add_argument("--prediction-type", choices=["epsilon", "v_prediction"], default=None,
                        help="for an SD 2.x .safetensors file: epsilon (512-base) or v_prediction (768-v, the default)")
    parser.add_argument("--dry-run", action="store_true", help="check the input and print the plan; convert nothing")
    parser.add_argument("--fp16", action="store_true",
                        help="float16 text encoders, U-Net and VAE encoder (the VAE decoder stays float32, and SDXL's encoder too)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--skip-check", action="store_true", help="don't compare each submodel with torch")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch decides)")
    parser.add_argument("--lora", action="append", default=[], metavar="FILE[:WEIGHT]",
                        help="bake a LoRA .safetensors into the weights at WEIGHT (default 1); repeatable")
    args = parser.parse_args()

    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    source: Path = args.source.resolve()
    out: Path = args.out.resolve()
    if out.exists():
        raise ConversionError(f"{out} already exists; choose a new folder")
    if not source.exists():
        raise ConversionError(f"{source} not found")
    started = time.monotonic()
    work = tempfile.TemporaryDirectory(prefix="convert-config-")
    plan: dict = {"source": source.as_posix(), "out": out.as_posix()}
    if source.is_dir():
        plan["kind"] = "diffusers-folder"
    elif source.suffix.lower() == ".safetensors":
        config, plan["config"], note = plan_single_file(
            source, args.config.resolve() if args.config else None, args.prediction_type, Path(work.name)
        )
        plan["kind"] = "single-file"
        if note:
            print(note, file=sys.stderr)
    elif source.suffix.lower() in (".ckpt", ".pt", ".pth", ".bin"):
        raise ConversionError(f"{source.name}: pickled checkpoints can run code when loaded; only .safetensors is accepted")
    else:
        raise ConversionError(f"{source} is neither a diffusers folder nor a .safetensors file")
    loras = [parse_lora_arg(value) for value in args.lora]
    for path, _ in loras:
        if not path.is_file():
            raise ConversionError(f"--lora {path}: file not found")
    if loras:
        plan["loras"] = [{"file": path.as_posix(), "weight": weight} for path, weight in loras]
    if args.dry_run:
        print(json.dumps({**plan, "dry_run": True}))
        return
    model = load_diffusers_folder(source) if plan["kind"] == "diffusers-folder" else load_single_file(source, config)
    if loras:
        fuse_loras(model, loras)

    from convert_lib.export import export_model

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.converting-", dir=out.parent))
    try:
        report = export_model(model, staging, opset=args.opset, fp16=args.fp16, check=not args.skip_check)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    work.cleanup()
    report.update({**plan, "seconds": round(time.monotonic() - started, 1)})
    print(json.dumps(report))


if __name__ == "__main__":
    try:
        main()
    except ConversionError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
