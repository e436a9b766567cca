"""Writes test/fixtures/parity/hires-interpolate.json: torch.nn.functional.interpolate on small latents.

A1111's "Latent" hires upscalers call `F.interpolate(samples, size=(h, w), mode=…, antialias=False)`
(modules/shared.py `latent_upscale_modes`); the engine's `interpolateLatents` must give the same values.
Cases: an exact 2× and uneven sizes, for nearest, nearest-exact, bilinear and bicubic (align_corners False).

    native-models/.venv/bin/python native-models/tools/make_hires_goldens.py
"""
import json
from pathlib import Path

import torch
import torch.nn.functional as F

OUT = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "parity" / "hires-interpolate.json"


def main() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 2, 4, 6, generator=g)
    cases = []
    for size in [(8, 12), (7, 13), (5, 9)]:
        for mode in ["nearest", "nearest-exact", "bilinear", "bicubic"]:
            kwargs = {} if mode.startswith("nearest") else {"align_corners": False}
            y = F.interpolate(x, size=size, mode=mode, antialias=False, **kwargs)
            cases.append({"mode": mode, "size": list(size), "output": [round(v, 7) for v in y.flatten().tolist()]})
    OUT.write_text(json.dumps({"input": {"shape": list(x.shape), "data": [round(v, 7) for v in x.flatten().tolist()]}, "cases": cases}))
    print(f"{OUT}: {len(cases)} cases")


if __name__ == "__main__":
    main()
