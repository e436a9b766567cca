#!/usr/bin/env python
"""Builds the tiny Stable Diffusion ONNX model folders under test/fixtures/models/ and the diffusers
parity references under test/fixtures/parity/ (see test/fixtures/README.md).

Real diffusers/transformers modules at tiny sizes with seeded random weights, exported the way the
diffusers convert script and optimum-cli export them, then checked: I/O signatures in onnxruntime,
ONNX vs torch, decoder output not saturated, the diffusers ONNX pipelines run.

Usage (from the repo root): npm run fixtures
    or: native-models/.venv/bin/python native-models/tools/make_fixtures.py [--skip-parity]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, HERE.as_posix())

from fixtures_lib import verify  # noqa: E402
from fixtures_lib.controlnet import build_controlnet_folder, make_controlnet_parity  # noqa: E402
from fixtures_lib.folders import build_all  # noqa: E402
from fixtures_lib.layout import build_layout_folder, make_layout_parity  # noqa: E402
from fixtures_lib.lora import LORA_DIR, build_named_folder, make_lora_parity, make_loras  # noqa: E402
from fixtures_lib.parity import make_parity  # noqa: E402
from fixtures_lib.sdxl import build_sdxl_folders, make_sdxl_parity  # noqa: E402
from fixtures_lib.tokenizer_files import build_tiny_vocabulary, check_against_full_vocabulary  # noqa: E402

FIXTURES = REPO / "test" / "fixtures"
# The first MERGE_COUNT merges of the real CLIP merges.txt. The tiny tokenizer files written by this
# script hold exactly those merges, so a committed fixture folder can rebuild itself.
MERGE_COUNT = 500
SHARED_CLIP_DIR = Path("/work/shared/data/clip-tokenizer")
COMMITTED_MERGES = FIXTURES / "models" / "tiny-sd1" / "tokenizer" / "merges.txt"


def _merges_source(explicit: Path | None) -> tuple[Path, Path | None]:
    """(merges.txt to read, full vocab.json to cross-check against or None)."""
    if explicit is not None:
        full_vocab = explicit.parent / "vocab.json"
        return explicit, full_vocab if full_vocab.exists() else None
    if (SHARED_CLIP_DIR / "merges.txt").exists():
        return SHARED_CLIP_DIR / "merges.txt", SHARED_CLIP_DIR / "vocab.json"
    if COMMITTED_MERGES.exists():
        return COMMITTED_MERGES, None
    raise SystemExit(
        "No CLIP merges.txt found: pass --clip-merges PATH (the CLIP BPE merges.txt shipped in any SD "
        "tokenizer/ folder)."
    )


def _digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()[:16]
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _sizes(models_dir: Path, parity_dir: Path) -> None:
    total = 0
    for folder in sorted(models_dir.iterdir()) + [parity_dir]:
        if not folder.is_dir():
            continue
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        total += size
        print(f"size {folder.name:18s} {size / 1e6:6.2f} MB")
    print(f"size {'total':18s} {total / 1e6:6.2f} MB")


def _lora_parity(named, parity_dir: Path, root: Path) -> None:
    """The LoRA files are made on the named folder's modules; their references need both."""
    make_lora_parity(named, make_loras(named, root / LORA_DIR), parity_dir, root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=FIXTURES, help="fixtures root (default: test/fixtures)")
    parser.add_argument("--clip-merges", type=Path, default=None, help="CLIP BPE merges.txt to take merges from")
    parser.add_argument("--skip-parity", action="store_true", help="only build and check the model folders")
    parser.add_argument(
        "--controlnet-only",
        action="store_true",
        help="only rebuild models/tiny-controlnet and its parity files (needs an existing parity/latents.npy)",
    )
    parser.add_argument(
        "--layout-only",
        action="store_true",
        help="only rebuild models/tiny-sd1-layout and its parity files (needs an existing parity/latents.npy)",
    )
    parser.add_argument(
        "--lora-only",
        action="store_true",
        help="only rebuild models/tiny-sd1-named, loras/ and the LoRA parity files (needs an existing parity/latents.npy)",
    )
    parser.add_argument(
        "--sdxl-only",
        action="store_true",
        help="only rebuild models/tiny-sdxl* and their parity files (sdxl-*)",
    )
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    merges_path, full_vocab = _merges_source(args.clip_merges)
    # Read the merges before the output folders (which may hold the only copy) are rebuilt.
    with tempfile.TemporaryDirectory() as tmp:
        merges_copy = Path(tmp) / "merges.txt"
        merges_copy.write_bytes(merges_path.read_bytes())
        vocab = build_tiny_vocabulary(merges_copy, MERGE_COUNT)
    if full_vocab is not None:
        check_against_full_vocabulary(vocab, full_vocab)
    print(f"tokenizer: {vocab.size} tokens ({MERGE_COUNT} merges), BOS {vocab.bos_id}, EOS {vocab.eos_id}")

    models_dir = args.out / "models"
    parity_dir = args.out / "parity"
    only = [
        (args.controlnet_only, build_controlnet_folder, make_controlnet_parity),
        (args.layout_only, build_layout_folder, make_layout_parity),
        (args.lora_only, build_named_folder, lambda folder, parity, root: _lora_parity(folder, parity, root)),
    ]
    for chosen, build_folder, make_folder_parity in only:
        if chosen:
            folder = build_folder(models_dir, vocab)
            if not args.skip_parity:
                make_folder_parity(folder, parity_dir, args.out)
            _sizes(models_dir, parity_dir)
            return
    if args.sdxl_only:
        sdxl = build_sdxl_folders(models_dir, vocab)
        if not args.skip_parity:
            make_sdxl_parity(sdxl, parity_dir, args.out)
        _sizes(models_dir, parity_dir)
        return
    built = build_all(models_dir, vocab)

    verify.check_files(built)
    verify.check_signatures(built)
    verify.check_against_torch(built, vocab.size)
    verify.check_decoders(built)
    verify.check_inpaint_pipeline(built["tiny-sd1-inpaint"])

    # Built after the others, so their folders and references are the same bytes as without them.
    controlnet = build_controlnet_folder(models_dir, vocab)
    layout = build_layout_folder(models_dir, vocab)
    named = build_named_folder(models_dir, vocab)
    sdxl = build_sdxl_folders(models_dir, vocab)
    if not args.skip_parity:
        make_parity(built, parity_dir, args.out)
        make_controlnet_parity(controlnet, parity_dir, args.out)
        make_layout_parity(layout, parity_dir, args.out)
        _lora_parity(named, parity_dir, args.out)
        make_sdxl_parity(sdxl, parity_dir, args.out)

    _sizes(models_dir, parity_dir)
    digest = hashlib.sha256(repr(_digest(models_dir)).encode()).hexdigest()[:16]
    print(f"models digest {digest}")


if __name__ == "__main__":
    main()
