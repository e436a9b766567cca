"""Writes test/fixtures/resize-lanczos/: Pillow's LANCZOS resize on small 8-bit pictures.

AUTOMATIC1111's "Inpaint area: Only masked" crops the picture and the mask and scales both to the
working size with `Image.resize(size, Image.LANCZOS)` (modules/images.py `resize_image`), and scales the
result back to the crop's size the same way (`apply_overlay`); the engine's `resizeLanczos` must give the
same bytes. Cases: RGB and grey ("L"), enlarging and reducing, uneven factors, one axis only, 1 pixel
wide; pictures of noise (every rounding shows) and of a brush-like mask (0/255 with hard edges).
Each case is `in-<i>.png` and `out-<i>.png` plus a line of cases.json. The "crop" cases are A1111's
own steps, `img.crop(box).resize(size, LANCZOS)`, for a picture and its mask with the same box.

    native-models/.venv/bin/python native-models/tools/make_resize_goldens.py
"""
import json
from pathlib import Path

import numpy as np
import PIL
from PIL import Image

OUT = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "resize-lanczos"

# (mode, input width, height, output width, height, content)
CASES = [
    ("RGB", 100, 100, 128, 128, "noise"),
    ("RGB", 100, 100, 128, 128, "mask"),
    ("RGB", 37, 53, 128, 128, "noise"),
    ("RGB", 128, 128, 100, 100, "mask"),
    ("RGB", 90, 90, 37, 53, "noise"),
    ("RGB", 100, 75, 32, 24, "noise"),
    ("RGB", 50, 75, 128, 96, "noise"),
    ("RGB", 64, 40, 64, 97, "noise"),
    ("RGB", 64, 40, 131, 40, "noise"),
    ("RGB", 1, 7, 5, 3, "noise"),
    ("L", 100, 100, 128, 128, "mask"),
    ("L", 128, 128, 77, 77, "mask"),
    ("L", 90, 61, 128, 96, "noise"),
    ("L", 3, 300, 17, 40, "noise"),
]


def picture(mode: str, width: int, height: int, content: str, rng: np.random.Generator) -> Image.Image:
    channels = 3 if mode == "RGB" else 1
    if content == "noise":
        data = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
    else:
        yy, xx = np.mgrid[0:height, 0:width]
        data = np.zeros((height, width, channels), dtype=np.uint8)
        for _ in range(6):
            cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(3, width / 4)
            data[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = 255
    return Image.fromarray(data[:, :, 0] if channels == 1 else data, mode)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(128)
    lines = []
    for i, (mode, w, h, tw, th, content) in enumerate(CASES):
        img = picture(mode, w, h, content, rng)
        img.save(OUT / f"in-{i}.png")
        img.resize((tw, th), Image.LANCZOS).save(OUT / f"out-{i}.png")
        lines.append({"case": i, "mode": mode, "from": [w, h], "to": [tw, th], "content": content})
    # A1111 only-masked: crop (left, top, right, bottom), then scale to the working size.
    box = (23, 9, 111, 97)
    for mode, content in (("RGB", "noise"), ("L", "mask")):
        i = len(lines)
        img = picture(mode, 150, 120, content, rng)
        img.save(OUT / f"in-{i}.png")
        img.crop(box).resize((128, 128), Image.LANCZOS).save(OUT / f"out-{i}.png")
        lines.append({"case": i, "mode": mode, "from": [150, 120], "to": [128, 128], "content": content, "crop": list(box)})
    (OUT / "cases.json").write_text(json.dumps({"pillow": PIL.__version__, "cases": lines}, indent=1) + "\n")
    print(f"{OUT}: {len(lines)} cases, Pillow {PIL.__version__}")


if __name__ == "__main__":
    main()
