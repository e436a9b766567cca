"""Random inpainting masks at pixel resolution (1 = repaint, 0 = keep, the SD convention):
brush strokes, boxes and the whole image, mixed by the probabilities in the config."""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw


def brush_mask(size: int, rng: np.random.Generator) -> np.ndarray:
    image = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(1, 4))):
        width = int(rng.integers(size // 16 + 1, size // 4 + 1))
        x, y = rng.uniform(0, size, 2)
        points = [(x, y)]
        angle = rng.uniform(0, 2 * math.pi)
        for _ in range(int(rng.integers(2, 7))):
            angle += rng.uniform(-1.5, 1.5)
            length = rng.uniform(size / 8, size / 2.5)
            x = float(np.clip(x + length * math.cos(angle), 0, size - 1))
            y = float(np.clip(y + length * math.sin(angle), 0, size - 1))
            points.append((x, y))
        draw.line(points, fill=255, width=width, joint="curve")
        for px, py in points:
            r = width / 2
            draw.ellipse((px - r, py - r, px + r, py + r), fill=255)
    return (np.asarray(image) >= 128).astype(np.float32)


def box_mask(size: int, rng: np.random.Generator) -> np.ndarray:
    mask = np.zeros((size, size), np.float32)
    for _ in range(int(rng.integers(1, 3))):
        w, h = rng.integers(size // 6, size * 3 // 4 + 1, 2)
        x0 = int(rng.integers(0, size - w + 1))
        y0 = int(rng.integers(0, size - h + 1))
        mask[y0:y0 + h, x0:x0 + w] = 1
    return mask


def random_mask(size: int, rng: np.random.Generator, probabilities: dict) -> np.ndarray:
    kinds = ["brush", "box", "whole"]
    p = np.array([probabilities[k] for k in kinds], dtype=np.float64)
    kind = kinds[int(rng.choice(len(kinds), p=p / p.sum()))]
    if kind == "brush":
        return brush_mask(size, rng)
    if kind == "box":
        return box_mask(size, rng)
    return np.ones((size, size), np.float32)
