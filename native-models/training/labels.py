"""The label rule of the layout model: every pixel of an emoji (RGB, composited on white) gets one of a
small fixed set of colour labels, and a picture's label map is that per-pixel label, one-hot encoded
and area-averaged down to latent resolution.

The rule, applied per pixel in this order (first match wins); V = max(R, G, B), C = V − min(R, G, B)
(chroma), H = hue in degrees (the HSV hexagon formula), all on 0–255 values:

  0 background  min(R, G, B) ≥ 232        near-white. White paint inside an emoji (eyes, teeth, clouds)
                                          is the same colour as the white the images are composited on,
                                          so it cannot be told apart and is background too.
  1 outline     V < 64                    near-black: outlines, black hair, pupils, dark shading.
  2 gray        C < 40                    unsaturated (silver, gray fur, stone, steel, light shadows)
                                          and dark colours, whose chroma is small because they are dark:
                                          dark brown hair such as (90, 60, 50) is "gray" by this rule.
  3 red         H < 12 or H ≥ 335         red and red-pink (hearts, apples, lips, tomatoes).
  4 orange      12 ≤ H < 42               orange, lighter browns and the skin tones (Fitzpatrick 1–6
                                          sit at 15–35°; brown is dark orange in hue terms).
  5 yellow      42 ≤ H < 68               the yellow of faces, stars, suns, bananas.
  6 green       68 ≤ H < 165              leaves, plants, frogs.
  7 blue        165 ≤ H < 255             cyan to blue: water, sky, blue objects.
  8 purple      255 ≤ H < 335             violet, purple, magenta and pink.

Why these thresholds: white ≥ 232 keeps the anti-aliased fringe of white shapes white while light skin
(min ≈ 190) and light pastel colours stay coloured; V < 64 is Noto's outline/black (≈ 30–60); C < 40
separates grays (the Noto grays have C < 20, shaded whites < 35) from pale colours such as light skin
(C ≈ 40–60). A saturation test (C / V ≥ 0.25 is not gray) was tried and dropped: it moves the dark
browns (a quarter of the "gray" pixels, mostly hair) into orange, where hair and skin then merge into
one region, while as gray they stay a separate shape; a separate "brown" label (orange hue, V < 160)
would keep both apart and is the next candidate when the label set is next changed (it changes K, so
every layout U-Net is retrained). The hue boundaries sit in the gaps of the Noto palette (orange ≈ 25–35°, yellow ≈ 45–55°,
red ≈ 350–5°) so that one coloured area rarely splits into two labels. They are fixed by this file:
changing them changes the training data, so a trained layout model goes with this exact rule
(labels.json is written next to it).

Label maps: labels at the image's resolution → one-hot (K channels) → mean over each f×f pixel block
(f = the VAE's downscale factor), giving float32 [K, H/f, W/f] whose channels sum to 1 at every cell.
The engine does the same from a painted PNG whose pixels are the palette colours of labels.json.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

LABELS_FORMAT = "latent-studio-labels/1"

# (name, display colour). Display colours are what a painted label map uses; they are distinct and
# close to the colour each label stands for, so a map reads like a flat-colour sketch.
LABELS: list[tuple[str, tuple[int, int, int]]] = [
    ("background", (255, 255, 255)),
    ("outline", (0, 0, 0)),
    ("gray", (140, 140, 140)),
    ("red", (220, 30, 40)),
    ("orange", (240, 140, 40)),
    ("yellow", (250, 215, 40)),
    ("green", (60, 170, 60)),
    ("blue", (40, 110, 230)),
    ("purple", (150, 70, 200)),
]
NUM_LABELS = len(LABELS)

WHITE_MIN = 232      # min(R, G, B) at or above: background
DARK_MAX_VALUE = 64  # V below: outline
GRAY_MAX_CHROMA = 40  # C below: gray
# Hue bins (degrees, lower bound inclusive) for the chromatic labels; red also takes [335, 360).
HUE_BINS: list[tuple[float, int]] = [(0.0, 3), (12.0, 4), (42.0, 5), (68.0, 6), (165.0, 7), (255.0, 8), (335.0, 3)]


def hue_degrees(rgb: np.ndarray) -> np.ndarray:
    """HSV hue in [0, 360) of float RGB [..., 3] (undefined → 0 where chroma is 0)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = rgb.max(-1)
    c = v - rgb.min(-1)
    safe = np.where(c > 0, c, 1.0)
    h = np.where(v == r, ((g - b) / safe) % 6, np.where(v == g, (b - r) / safe + 2, (r - g) / safe + 4))
    return np.where(c > 0, h * 60.0, 0.0) % 360.0


def label_image(rgb_u8: np.ndarray) -> np.ndarray:
    """uint8 [..., H, W, 3] (composited on white) → uint8 label ids [..., H, W] by the rule above."""
    rgb = rgb_u8.astype(np.float32)
    v = rgb.max(-1)
    lo = rgb.min(-1)
    c = v - lo
    hue = hue_degrees(rgb)
    labels = np.zeros(rgb.shape[:-1], np.uint8)
    for start, label in HUE_BINS:
        labels[hue >= start] = label
    labels[c < GRAY_MAX_CHROMA] = 2
    labels[v < DARK_MAX_VALUE] = 1
    labels[lo >= WHITE_MIN] = 0
    return labels


def one_hot_pooled(labels: np.ndarray, factor: int, num_labels: int = NUM_LABELS) -> np.ndarray:
    """uint8 [N, H, W] label ids → float32 [N, K, H/f, W/f]: one-hot, then the mean of each f×f block."""
    n, h, w = labels.shape
    if h % factor or w % factor:
        raise ValueError(f"label map {h}x{w} is not a multiple of the VAE factor {factor}")
    one_hot = (labels[:, None] == np.arange(num_labels, dtype=np.uint8)[None, :, None, None]).astype(np.float32)
    return one_hot.reshape(n, num_labels, h // factor, factor, w // factor, factor).mean(axis=(3, 5))


def label_maps(rgb_u8: np.ndarray, factor: int) -> np.ndarray:
    """uint8 [N, H, W, 3] pictures → float32 [N, K, H/f, W/f] latent-resolution label maps."""
    return one_hot_pooled(label_image(rgb_u8), factor)


def palette() -> np.ndarray:
    return np.array([color for _, color in LABELS], np.uint8)


def labels_to_rgb(labels: np.ndarray) -> np.ndarray:
    """Label ids → their display colours (the PNG a user would paint)."""
    return palette()[labels]


def rgb_to_labels(rgb_u8: np.ndarray) -> np.ndarray:
    """A painted map → label ids, as the engine reads it: nearest palette colour by squared RGB distance,
    ties to the lower id (argmin returns the first minimum)."""
    d = ((rgb_u8[..., None, :].astype(np.int32) - palette().astype(np.int32)) ** 2).sum(-1)
    return d.argmin(-1).astype(np.uint8)


def labels_json() -> dict:
    return {"format": LABELS_FORMAT,
            "labels": [{"id": i, "name": name, "color": list(color)} for i, (name, color) in enumerate(LABELS)]}


def write_labels_json(path: Path) -> None:
    """labels.json with one label per line (readable diffs; the same JSON as labels_json())."""
    value = labels_json()
    rows = ",\n".join("  " + json.dumps(label) for label in value["labels"])
    path.write_text(f'{{"format": {json.dumps(value["format"])},\n "labels": [\n{rows}\n ]}}\n')
    if json.loads(path.read_text()) != value:
        raise AssertionError(f"{path}: written JSON does not read back")


def check_palette() -> None:
    colors = [c for _, c in LABELS]
    if len(set(colors)) != len(colors):
        raise AssertionError("labels.json colours must be distinct")
    # The display colours must label as themselves under the rule, so a map painted in them and the
    # emoji-derived maps mean the same thing.
    ids = label_image(palette()[None])[0]
    if ids.tolist() != list(range(NUM_LABELS)):
        raise AssertionError(f"a display colour falls under another label: {ids.tolist()}")


check_palette()
