"""Stage 1: build the emoji training set from the npm package emoji-datasource-google.

Output (in <work>/data/): images.npy (uint8 [N, 64, 64, 3], RGBA composited onto a white
background) and records.json (one record per image: code points, names, categories, caption parts
and the train/held-out split). The package tarball is fetched with `npm pack` into
native-models/.work/downloads/ (never into the app's node_modules).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from .config import Config, add_common_args, load_config

SKIN_TONE_WORDS = {
    # Unicode Fitzpatrick modifiers (UTS #51, emoji modifier sequences) and their CLDR names.
    "1F3FB": "light skin tone",
    "1F3FC": "medium-light skin tone",
    "1F3FD": "medium skin tone",
    "1F3FE": "medium-dark skin tone",
    "1F3FF": "dark skin tone",
}


def fetch_package(cfg: Config) -> Path:
    """Returns the unpacked package folder, running `npm pack` once if needed."""
    data_cfg = cfg["data"]
    package = f"{data_cfg['npm_package']}@{data_cfg['npm_version']}"
    cfg.download_dir.mkdir(parents=True, exist_ok=True)
    unpacked = cfg.download_dir / f"{data_cfg['npm_package']}-{data_cfg['npm_version']}"
    if (unpacked / "package" / "emoji.json").exists():
        return unpacked / "package"
    tarball = cfg.download_dir / f"{data_cfg['npm_package']}-{data_cfg['npm_version']}.tgz"
    if not tarball.exists():
        subprocess.run(["npm", "pack", package, "--loglevel=error", "--pack-destination", str(cfg.download_dir)],
                       check=True, cwd=cfg.download_dir, stdout=subprocess.DEVNULL)
    unpacked.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as archive:
        archive.extractall(unpacked, filter="data")
    return unpacked / "package"


def words(text: str) -> str:
    return " ".join(text.replace("_", " ").replace("-", " ").lower().split())


def caption_parts(entry: dict, skin_codes: list[str]) -> dict:
    name = " ".join(entry["name"].lower().split())
    short_names = [words(s) for s in entry.get("short_names", [])]
    short_names = [s for s in dict.fromkeys(short_names) if s != name]
    return {
        "name": name,
        "skin": [SKIN_TONE_WORDS[c] for c in skin_codes],
        "short_names": short_names,
        "category": entry["category"].lower(),
        "subcategory": words(entry["subcategory"]),
    }


def canonical_caption(parts: dict) -> str:
    """The evaluation prompt: name, skin tones, category, subcategory (e.g. "red apple, food & drink, food fruit")."""
    return ", ".join([parts["name"], *parts["skin"], parts["category"], parts["subcategory"]])


def is_held_out(unified: str, held_out_percent: float) -> bool:
    digest = hashlib.sha256(unified.encode()).digest()
    return int.from_bytes(digest[:4], "big") % 10_000 < held_out_percent * 100


def composite(path: Path, size: int, background: tuple[int, int, int]) -> np.ndarray:
    image = Image.open(path).convert("RGBA")
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", image.size, (*background, 255))
    canvas.alpha_composite(image)
    return np.asarray(canvas.convert("RGB"), dtype=np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_args(parser)
    args = parser.parse_args()
    cfg = load_config(args)
    data_cfg = cfg["data"]
    package_dir = fetch_package(cfg)
    entries = json.loads((package_dir / "emoji.json").read_text())
    entries.sort(key=lambda e: e["sort_order"])
    image_dir = package_dir / "img" / data_cfg["image_set"] / str(data_cfg["image_size"])
    background = tuple(data_cfg["background_rgb"])

    records = []
    images = []
    for entry in entries:
        variants = [(entry["unified"], entry["image"], [], entry.get(f"has_img_{data_cfg['image_set']}", True))]
        for modifier, variant in (entry.get("skin_variations") or {}).items():
            variants.append((variant["unified"], variant["image"], modifier.split("-"),
                             variant.get(f"has_img_{data_cfg['image_set']}", True)))
        for unified, image_name, skin_codes, has_image in variants:
            path = image_dir / image_name
            if not has_image or not path.exists():
                continue
            parts = caption_parts(entry, skin_codes)
            records.append({
                "index": len(records),
                "unified": unified,
                "base_unified": entry["unified"],
                "parts": parts,
                "caption": canonical_caption(parts),
                "split": "heldout" if is_held_out(unified, data_cfg["held_out_percent"]) else "train",
            })
            images.append(composite(path, data_cfg["image_size"], background))
    limit = data_cfg.get("limit_images")
    if limit:
        records, images = records[:limit], images[:limit]
        for i, record in enumerate(records):
            record["index"] = i
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    np.save(cfg.data_dir / "images.npy", np.stack(images))
    (cfg.data_dir / "records.json").write_text(json.dumps(records, indent=0))
    held_out = sum(r["split"] == "heldout" for r in records)
    print(json.dumps({"images": len(records), "heldout": held_out, "train": len(records) - held_out,
                      "data_dir": str(cfg.data_dir)}))


if __name__ == "__main__":
    main()
