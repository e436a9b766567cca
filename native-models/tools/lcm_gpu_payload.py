"""Packs what the LCM distillation (training.train_lcm) needs to run on a rented accelerator that holds a
copy of the repository without its large folders, and unpacks it there.

  python tools/lcm_gpu_payload.py build [--out ../.dev/lcm]    # here: writes the payload folder
  python3 .dev/lcm/lcm_gpu_payload.py unpack --payload .dev/lcm --work-dir /tmp/work   # there (run.sh does it)

The payload (kept small, everything lossless):
- work.pt: the VAE, the text-to-image teacher (U-Net + text encoder) and the inpainting teacher's U-Net in
  fp16 (the work folder's weights are fp16-exact: the committed checkpoints hold fp16), the inpainting
  U-Net stored as the XOR of its fp16 bits with the text-to-image U-Net's (it was fine-tuned from it, so
  the high bits mostly cancel and the file compresses), the whole thing LZMA-compressed;
- images.npz (the dataset, compressed) and records.json.xz;
- teacher_scheduler.json (the inpainting teacher folder's sampler: the proxy evaluation draws the teacher's
  20-step inpainting with it in torch), optionally cases_inpaint.npz (--cases: the same pictures by the
  evaluation's own ONNX pipeline, training.lcm_proxy.teacher_inpaint_cases; slow on a CPU), and
  teacher_eval.json (the teacher's text fidelity from emoji-ldm/eval.json): the proxy's references;
- diffusers (a pinned copy without its pipelines, which training does not import) and, for machines that
  lack them, the Pillow and requests wheels diffusers imports;
- run.sh (the device script) and this file.
Unpacking rebuilds data/ and runs/{vae,unet,inpaint}/ exactly as the local chain wrote them (fp32).
"""
from __future__ import annotations

import argparse
import io
import json
import lzma
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
WHEELS = ["pillow==12.0.0", "requests==2.32.5", "urllib3==2.5.0", "idna==3.10", "charset_normalizer==3.4.3",
          "certifi==2025.8.3"]
DIFFUSERS = "diffusers==0.42.1"
DIFFUSERS_DROP = ("diffusers/pipelines/", "diffusers/modular_pipelines/", "diffusers/commands/", "diffusers/experimental/")
DIFFUSERS_KEEP = ("diffusers/pipelines/__init__.py", "diffusers/pipelines/pipeline_utils.py",
                  "diffusers/modular_pipelines/__init__.py")


def xor16(a, b):
    import torch
    return (a.view(torch.int16) ^ b.view(torch.int16)).view(torch.float16)


def half(state: dict) -> dict:
    import torch
    out = {}
    for k, v in state.items():
        if v.is_floating_point():
            h = v.half()
            if not torch.equal(h.float(), v.float()):
                raise SystemExit(f"{k} is not fp16-exact; the payload would change the weights")
            out[k] = h
        else:
            out[k] = v
    return out


def build(args: argparse.Namespace) -> None:
    import numpy as np
    import torch
    sys.path.insert(0, str(HERE.parent))
    from training.common import load_images
    from training.config import DEFAULT_CONFIG, Config

    cfg = Config(args.config or DEFAULT_CONFIG, toy=False, work_dir=args.work_dir)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    runs = cfg.runs_dir
    vae = torch.load(runs / "vae" / "vae.pt", map_location="cpu", weights_only=False)
    text = torch.load(runs / "unet" / "unet.pt", map_location="cpu", weights_only=False)
    inp = torch.load(runs / "inpaint" / "unet.pt", map_location="cpu", weights_only=False)
    if not all(torch.equal(text["text_encoder"][k], inp["text_encoder"][k]) for k in text["text_encoder"]):
        raise SystemExit("the inpainting teacher has its own text encoder; this payload assumes the shared one")
    inp_unet = half(inp["unet"])
    text_unet = half(text["unet"])
    packed_inp = {k: xor16(v, text_unet[k]) if k in text_unet and text_unet[k].shape == v.shape and v.dtype == torch.float16
                  else v for k, v in inp_unet.items()}
    xored = sorted(k for k in packed_inp if packed_inp[k] is not inp_unet[k])
    bundle = {"vae": {**vae, "model": half(vae["model"])},
              "unet": {**text, "unet": text_unet, "text_encoder": half(text["text_encoder"])},
              "inpaint": {**inp, "unet": packed_inp, "text_encoder": None, "xor_with_text_unet": xored}}
    raw = io.BytesIO()
    torch.save(bundle, raw)
    (out / "work.pt.xz").write_bytes(lzma.compress(raw.getvalue(), preset=6))

    images, records = load_images(cfg.data_dir)
    np.savez_compressed(out / "images.npz", images=images)
    (out / "records.json.xz").write_bytes(lzma.compress((cfg.data_dir / "records.json").read_bytes()))
    shutil.copyfile(cfg.inpaint_export_dir / "scheduler" / "scheduler_config.json", out / "teacher_scheduler.json")
    if args.cases is not None:  # optional: the ONNX teacher's cases (slow to make on a CPU)
        if not args.cases.exists():
            from training.lcm_proxy import teacher_inpaint_cases
            np.savez_compressed(args.cases, **teacher_inpaint_cases(cfg, cfg.inpaint_export_dir, images, records))
        shutil.copyfile(args.cases, out / "cases_inpaint.npz")
    teacher_eval = json.loads((cfg.export_dir / "eval.json").read_text())
    (out / "teacher_eval.json").write_text(json.dumps({"text_fidelity": teacher_eval["text_fidelity"]}, indent=1) + "\n")

    wheels = args.wheels or out / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    if not list(wheels.glob("diffusers-*.whl")):
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", DIFFUSERS, "-d", str(wheels)], check=True)
    if len(list(wheels.glob("*.whl"))) < len(WHEELS) + 1:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
                        "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64", *WHEELS, "-d", str(wheels)],
                       check=True)
    import zipfile
    diffusers_whl = next(wheels.glob("diffusers-*.whl"))
    with zipfile.ZipFile(diffusers_whl) as z, tarfile.open(out / "diffusers-slim.tar.xz", "w:xz") as tar:
        for info in z.infolist():
            name = info.filename
            if name.endswith("/") or name.endswith(".pyc"):
                continue
            if name.startswith(DIFFUSERS_DROP) and name not in DIFFUSERS_KEEP:
                continue
            data = z.read(info)
            entry = tarfile.TarInfo(name)
            entry.size = len(data)
            tar.addfile(entry, io.BytesIO(data))
    for wheel in wheels.glob("*.whl"):
        if not wheel.name.startswith("diffusers-"):
            shutil.copyfile(wheel, out / wheel.name)
    if wheels == out / "wheels":
        shutil.rmtree(wheels)
    shutil.copyfile(Path(__file__), out / "lcm_gpu_payload.py")
    shutil.copyfile(HERE / "lcm_gpu_run.sh", out / "run.sh")
    total = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    print(json.dumps({"out": str(out), "files": {p.name: p.stat().st_size for p in sorted(out.iterdir()) if p.is_file()},
                      "total_mb": round(total / 1e6, 2)}, indent=1))


def unpack(args: argparse.Namespace) -> None:
    import numpy as np
    import torch
    payload, work = args.payload, args.work_dir
    bundle = torch.load(io.BytesIO(lzma.decompress((payload / "work.pt.xz").read_bytes())), map_location="cpu", weights_only=False)
    fp32 = lambda state: {k: v.float() if v.is_floating_point() else v for k, v in state.items()}  # noqa: E731
    text_unet = bundle["unet"]["unet"]
    inp = bundle["inpaint"]
    xored = set(inp.pop("xor_with_text_unet"))
    inp["unet"] = fp32({k: xor16(v, text_unet[k]) if k in xored else v for k, v in inp["unet"].items()})
    inp["text_encoder"] = fp32(bundle["unet"]["text_encoder"])
    bundle["unet"]["unet"] = fp32(text_unet)
    bundle["unet"]["text_encoder"] = fp32(bundle["unet"]["text_encoder"])
    bundle["vae"]["model"] = fp32(bundle["vae"]["model"])
    for stage, key in (("vae", "vae"), ("unet", "unet"), ("inpaint", "inpaint")):
        (work / "runs" / stage).mkdir(parents=True, exist_ok=True)
        name = "vae.pt" if stage == "vae" else "unet.pt"
        torch.save(bundle[key], work / "runs" / stage / name)
        (work / "runs" / stage / "done.json").write_text("{}\n")
    (work / "data").mkdir(parents=True, exist_ok=True)
    np.save(work / "data" / "images.npy", np.load(payload / "images.npz")["images"])
    (work / "data" / "records.json").write_bytes(lzma.decompress((payload / "records.json.xz").read_bytes()))
    print(f"unpacked into {work}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build")
    b.add_argument("--out", type=Path, default=REPO / ".dev" / "lcm")
    b.add_argument("--config", type=Path, default=None)
    b.add_argument("--work-dir", type=Path, default=None, help="the local work folder (default: the config's)")
    b.add_argument("--cases", type=Path, default=None, help="ship the ONNX teacher's cases from this .npz (made there if missing: slow)")
    b.add_argument("--wheels", type=Path, default=None, help="a folder with the wheels already downloaded")
    u = sub.add_parser("unpack")
    u.add_argument("--payload", type=Path, required=True)
    u.add_argument("--work-dir", type=Path, required=True)
    args = parser.parse_args()
    build(args) if args.action == "build" else unpack(args)


if __name__ == "__main__":
    main()
