#!/usr/bin/env python
"""Convert a Stable Diffusion 1.x/2.x model to the ONNX folder Latent Studio opens (the optimum layout).

Input, either:
  * a diffusers model folder (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/ with
    torch weights), or
  * a single-file .safetensors checkpoint (the CompVis/A1111 layout, as model sites share them), with
    --config pointing at a diffusers-format folder of the same architecture (its configs, tokenizer and
    scheduler are used; its weights, if any, are not). Conversion is offline: nothing is downloaded.

Output: OUT, written to a temp folder beside it and renamed into place when complete and checked
(every submodel is run in onnxruntime and compared with torch). Then import OUT in the studio.

Usage (from the repo root; the venv is made by native-models/tools/setup-venv.sh):
  native-models/.venv/bin/python native-models/tools/convert.py SOURCE OUT [--fp16] [--config DIR]

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

from convert_lib.sources import ConversionError, load_diffusers_folder, load_single_file  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a diffusers model folder or a .safetensors checkpoint")
    parser.add_argument("out", type=Path, help="the ONNX model folder to write (must not exist)")
    parser.add_argument("--config", type=Path, default=None, help="for a .safetensors file: a diffusers-format folder of the same architecture")
    parser.add_argument("--fp16", action="store_true", help="float16 text encoder, U-Net and VAE encoder (VAE decoder stays float32)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--skip-check", action="store_true", help="don't compare each submodel with torch")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch decides)")
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
    if source.is_dir():
        model = load_diffusers_folder(source)
    elif source.suffix.lower() == ".safetensors":
        model = load_single_file(source, args.config.resolve() if args.config else None)
    elif source.suffix.lower() in (".ckpt", ".pt", ".bin"):
        raise ConversionError(f"{source.name}: pickled checkpoints can run code when loaded; only .safetensors is accepted")
    else:
        raise ConversionError(f"{source} is neither a diffusers folder nor a .safetensors file")

    from convert_lib.export import export_model

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.converting-", dir=out.parent))
    try:
        report = export_model(model, staging, opset=args.opset, fp16=args.fp16, check=not args.skip_check)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    report.update({"source": source.as_posix(), "out": out.as_posix(), "seconds": round(time.monotonic() - started, 1)})
    print(json.dumps(report))


if __name__ == "__main__":
    try:
        main()
    except ConversionError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
