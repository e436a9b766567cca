"""Torch references for the SDXL refiner's aesthetic scores, on test/fixtures/models/tiny-sdxl-refiner.

Run:  native-models/.venv/bin/python native-models/tools/make_sdxl_aesthetic_parity.py
Writes parity/sdxl-aesthetic-cases.json and sdxl-refiner-aesthetic-*.png/.npy (read by
test/unit/engine/pipelines/sdxl-aesthetic.test.ts). The model folder is not changed.

diffusers' StableDiffusionXLImg2ImgPipeline (requires_aesthetics_score=True) puts the scores into the
refiner's time ids: (original h, w, crop top, left, aesthetic_score) for the prompt and (…,
negative_aesthetic_score) for the negative (`_get_add_time_ids`; defaults 6.0 and 2.5, A1111's
"SDXL high/low aesthetic score" options). One case with the defaults and one with other scores, from the
same latents and VAE posterior noise as the fixture's refiner case (parity/sdxl-latents.npy,
sdxl-posterior-noise.npy), so the pair also shows that the scores change the picture.

tiny-sdxl-refiner's torch modules are rebuilt from their seed (fixtures_lib/sdxl.py build_sdxl_folders:
7300) and checked against the committed ONNX U-Net first.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from diffusers import StableDiffusionXLImg2ImgPipeline
from diffusers.pipelines.stable_diffusion_xl import pipeline_stable_diffusion_xl_img2img
from PIL import Image

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, HERE.as_posix())

from fixtures_lib.parity import _plain_config, _save_image, _stats  # noqa: E402
from fixtures_lib.sdxl import (  # noqa: E402
    INIT_IMAGE_FILE,
    LATENTS_FILE,
    PROMPT,
    SdxlFolder,
    _pipeline,
    _run,
    build_sdxl_models,
)
from fixtures_lib.tokenizer_files import build_tiny_vocabulary  # noqa: E402

FIXTURES = REPO / "test" / "fixtures"
FOLDER = FIXTURES / "models" / "tiny-sdxl-refiner"
PARITY = FIXTURES / "parity"
CASES_FILE = "sdxl-aesthetic-cases.json"
POSTERIOR_FILE = "sdxl-posterior-noise.npy"
MERGE_COUNT = 500  # make_fixtures.py MERGE_COUNT
REFINER_SEED = 7300  # fixtures_lib/sdxl.py build_sdxl_folders: tiny-sdxl-refiner's seed
STEPS = 8
CFG = 5.0
STRENGTH = 0.6
NEGATIVE = "blurry, low quality"
# (name, aesthetic_score, negative_aesthetic_score): diffusers' defaults, then a high/low pair far from them.
CASES = [("default", 6.0, 2.5), ("scores", 9.0, 1.0)]


@torch.no_grad()
def check_unet(models) -> None:
    g = torch.Generator().manual_seed(0)
    sample = torch.randn(1, 4, 8, 8, generator=g)
    hidden = torch.randn(1, 77, models.unet.config.cross_attention_dim, generator=g)
    pooled = torch.randn(1, models.text_encoder_2.config.projection_dim, generator=g)
    ids = torch.tensor([[64.0, 64, 0, 0, 6]])
    want = models.unet(sample, torch.tensor(500.0), hidden, added_cond_kwargs={"text_embeds": pooled, "time_ids": ids}).sample.numpy()
    session = ort.InferenceSession(str(FOLDER / "unet" / "model.onnx"), providers=["CPUExecutionProvider"])
    feeds = {"sample": sample, "timestep": torch.tensor(500.0), "encoder_hidden_states": hidden, "text_embeds": pooled, "time_ids": ids}
    got = session.run(None, {k: v.numpy() for k, v in feeds.items()})[0]
    diff = float(np.abs(got - want).max())
    if diff > 1e-4:
        raise SystemExit(f"the rebuilt torch U-Net differs from {FOLDER}/unet ({diff})")


def main() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    vocab = build_tiny_vocabulary(FOLDER / "tokenizer_2" / "merges.txt", MERGE_COUNT)
    models = build_sdxl_models(vocab, REFINER_SEED, refiner=True)
    check_unet(models)
    scheduler_config = json.loads((FOLDER / "scheduler" / "scheduler_config.json").read_text())
    folder = SdxlFolder(FOLDER.name, FOLDER, models, scheduler_config, refiner=True)
    latents = np.load(PARITY / LATENTS_FILE)
    posterior = np.load(PARITY / POSTERIOR_FILE)
    init = Image.open(PARITY / INIT_IMAGE_FILE).convert("RGB")
    cases, images = [], []
    for name, score, negative_score in CASES:
        pipe = _pipeline(folder, StableDiffusionXLImg2ImgPipeline)
        noises = {"pipeline": [latents], "posterior": [posterior[0]]}
        image = _run(
            pipe, pipeline_stable_diffusion_xl_img2img, noises, prompt=PROMPT, negative_prompt=NEGATIVE, num_inference_steps=STEPS,
            guidance_scale=CFG, image=init, strength=STRENGTH, aesthetic_score=score, negative_aesthetic_score=negative_score,
        )
        stem = f"sdxl-refiner-aesthetic-{name}"
        png, npy = _save_image(PARITY, stem, image)
        images.append(image)
        print(f"parity {stem:34s} {_stats(image)}")
        cases.append({
            "name": stem,
            "model": FOLDER.relative_to(FIXTURES).as_posix(),
            "pipeline": "diffusers StableDiffusionXLImg2ImgPipeline (torch, requires_aesthetics_score=True, the weights exported to the folder)",
            "mode": "img2img",
            "prompt": PROMPT,
            "negative": NEGATIVE,
            "steps": STEPS,
            "cfg": CFG,
            "sampler": "euler",
            "width": image.shape[1],
            "height": image.shape[0],
            "strength": STRENGTH,
            "aesthetic_score": score,
            "negative_aesthetic_score": negative_score,
            "latents": LATENTS_FILE,
            "init_image": INIT_IMAGE_FILE,
            "posterior_noise": POSTERIOR_FILE,
            "reference": png,
            "reference_float": npy,
            "scheduler_config": _plain_config(pipe.scheduler.config, type(pipe.scheduler).__name__),
        })
    levels = float(np.abs(np.round(images[0] * 255) - np.round(images[1] * 255)).max())
    print(f"the scores move pixels by up to {levels:.0f}/255")
    (PARITY / CASES_FILE).write_text(json.dumps(cases, indent=1, allow_nan=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
