"""Torch references for the engine's soft inpainting (electron/engine/pipelines/soft-inpaint.ts).

Run:  native-models/.venv/bin/python native-models/tools/make_soft_inpaint_parity.py
Writes test/fixtures/parity/soft-cases.json, soft-*.png/.npy (references), soft-mask.png (a gradient mask),
soft-init.png and soft-posterior-noise.npy (read by test/unit/engine/pipelines/soft-inpaint.test.ts).

The torch modules are the fixtures' own (make_fixtures.py: tiny-sd1 ModelSpec(seed=1000), tiny-sd1-inpaint
seed 2000 with a 9-channel U-Net), checked against the committed ONNX U-Nets first. The loop is written out
with diffusers' U-Net and schedulers and does differential diffusion as the community
StableDiffusionDiffImg2ImgPipeline does it, with the change map c = mask / 255 (mask blur 0):

    keep = 1 − avg_pool2d(c, 8);  thresholds = arange(N) / N
    step i:  known = add_noise(z₀, ε, tᵢ);  z = known if i = 0 else known·(keep > thresholdsᵢ) + z·(1 − …)
    then the U-Net (9 channels: [scale(z) | nearest(mask ≥ ½) | E(x·(mask < ½))]), CFG and the scheduler step;
    decode, round to bytes, and paste over the picture with weight c: round(x·(1 − c) + g·c).

from the same initial latents (parity/latents.npy) and posterior noise (init picture first, then the
masked picture for 9 channels: the engine's draw order).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, EulerDiscreteScheduler
from PIL import Image
from transformers import CLIPTokenizer

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, HERE.as_posix())

from fixtures_lib.parity import LATENTS_FILE, _stats  # noqa: E402
from fixtures_lib.tiny_models import IMAGE_SIZE, ModelSpec, UNetSpec, build_models  # noqa: E402
from fixtures_lib.tokenizer_files import build_tiny_vocabulary  # noqa: E402
from make_region_parity import check_unet, ids  # noqa: E402

FIXTURES = REPO / "test" / "fixtures"
MODELS = FIXTURES / "models"
PARITY = FIXTURES / "parity"
CASES_FILE = "soft-cases.json"
MERGE_COUNT = 500  # make_fixtures.py MERGE_COUNT
VAE_FACTOR = 8
STEPS = 8
CFG = 7.5
POSTERIOR_SEED = 8642
POSTERIOR_FILE = "soft-posterior-noise.npy"
INIT_FILE = "soft-init.png"
MASK_FILE = "soft-mask.png"
PROMPT = "a red apple"
NEGATIVE = "blurry"


def write_inputs() -> None:
    """A picture with structure, and a gradient mask: 0 left of x = 12, rising to 255 at x = 44, for rows
    8 to 55 (so some latent blocks are part-covered and the threshold crosses every grey level)."""
    y, x = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
    rgb = np.stack([np.round(x / IMAGE_SIZE * 255), np.round(y / IMAGE_SIZE * 255), np.where((x // 8 + y // 8) % 2 == 0, 200, 60)], -1)
    Image.fromarray(rgb.astype(np.uint8)).save(PARITY / INIT_FILE, optimize=False)
    ramp = np.clip((x - 12) / 32, 0, 1)
    mask = np.where((y >= 8) & (y < 56), ramp, 0)
    Image.fromarray(np.round(mask * 255).astype(np.uint8)).save(PARITY / MASK_FILE, optimize=False)


@torch.no_grad()
def soft_case(models, tokenizer, scheduler, latents, posterior, init_bytes: np.ndarray, mask_bytes: np.ndarray, nine: bool) -> np.ndarray:
    te = models.text_encoder
    uncond = te(ids(tokenizer, NEGATIVE)).last_hidden_state
    cond = te(ids(tokenizer, PROMPT)).last_hidden_state
    vae = models.vae
    scaling = vae.config.scaling_factor
    noise = torch.from_numpy(latents.copy())
    init = torch.from_numpy(init_bytes.astype(np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    change = torch.from_numpy(mask_bytes.astype(np.float32) / 255)[None, None]

    def encode(x: torch.Tensor, z: np.ndarray) -> torch.Tensor:
        dist = vae.encode(x).latent_dist
        return (dist.mean + dist.std * torch.from_numpy(z.copy())) * scaling

    x0 = encode(init, posterior[0])
    extra = None
    if nine:
        m = (change >= 0.5).float()
        masked_latents = encode(init * (m < 0.5), posterior[1])
        extra = torch.cat([F.interpolate(m, size=(IMAGE_SIZE // VAE_FACTOR,) * 2), masked_latents], dim=1)
    keep = 1 - F.avg_pool2d(change, VAE_FACTOR)
    scheduler.set_timesteps(STEPS)
    timesteps = scheduler.timesteps
    n = len(timesteps)
    thresholds = torch.arange(n, dtype=torch.float32) / n
    z = noise * scheduler.init_noise_sigma
    for i, t in enumerate(timesteps):
        known = scheduler.add_noise(x0, noise, t.reshape(1))
        if i == 0:
            z = known
        else:
            m = (keep > thresholds[i]).float()
            z = known * m + z * (1 - m)
        x = scheduler.scale_model_input(z, t)
        if extra is not None:
            x = torch.cat([x, extra], dim=1)
        u = models.unet(x, t, uncond).sample
        c = models.unet(x, t, cond).sample
        z = scheduler.step(u + CFG * (c - u), t, z).prev_sample
    decoded = (vae.decode(z / scaling).sample / 2 + 0.5).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    generated = np.round(decoded * 255)
    a = (mask_bytes.astype(np.float32) / 255)[..., None]
    pasted = np.where(a <= 0, init_bytes, np.where(a >= 1, generated, np.round(init_bytes * (1 - a) + generated * a)))
    return pasted.astype(np.float32)


def main() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    write_inputs()
    vocab = build_tiny_vocabulary(MODELS / "tiny-sd1" / "tokenizer" / "merges.txt", MERGE_COUNT)
    latents = np.load(PARITY / LATENTS_FILE)
    posterior = np.random.RandomState(POSTERIOR_SEED).standard_normal((2,) + latents.shape).astype(np.float32)
    np.save(PARITY / POSTERIOR_FILE, posterior)
    init_bytes = np.asarray(Image.open(PARITY / INIT_FILE).convert("RGB"), dtype=np.uint8)
    mask_bytes = np.asarray(Image.open(PARITY / MASK_FILE), dtype=np.uint8)
    tokenizer = CLIPTokenizer.from_pretrained(str(MODELS / "tiny-sd1" / "tokenizer"))
    cases: list[dict] = []

    sd1 = build_models(ModelSpec(seed=1000), vocab.size, vocab.bos_id, vocab.eos_id)
    check_unet(sd1.unet, MODELS / "tiny-sd1", 32)
    inpaint = build_models(ModelSpec(seed=2000, unet=UNetSpec(**{**UNetSpec().__dict__, "in_channels": 9})), vocab.size, vocab.bos_id, vocab.eos_id)
    check_unet(inpaint.unet, MODELS / "tiny-sd1-inpaint", 32)
    for name, model, models, scheduler_class, sampler, nine in [
        ("soft-sd1-euler", "tiny-sd1", sd1, EulerDiscreteScheduler, "euler", False),
        ("soft-sd1-ddim", "tiny-sd1", sd1, DDIMScheduler, "ddim", False),
        ("soft-sd1-inpaint-ddim", "tiny-sd1-inpaint", inpaint, DDIMScheduler, "ddim", True),
        ("soft-sd1-inpaint-euler", "tiny-sd1-inpaint", inpaint, EulerDiscreteScheduler, "euler", True),
    ]:
        config = json.loads((MODELS / model / "scheduler" / "scheduler_config.json").read_text())
        image = soft_case(models, tokenizer, scheduler_class.from_config(config), latents, posterior, init_bytes, mask_bytes, nine)
        png, npy = f"{name}.png", f"{name}.npy"
        np.save(PARITY / npy, image / 255)
        Image.fromarray(image.astype(np.uint8)).save(PARITY / png, optimize=False)
        print(f"parity {name:26s} {_stats(image / 255)}; changed vs the picture: mean {np.abs(image - init_bytes).mean():.1f}/255")
        cases.append({
            "name": name, "model": f"models/{model}", "prompt": PROMPT, "negative": NEGATIVE, "steps": STEPS, "cfg": CFG,
            "sampler": sampler, "width": IMAGE_SIZE, "height": IMAGE_SIZE, "latents": LATENTS_FILE, "mode": "inpaint",
            "strength": 1.0, "init_image": INIT_FILE, "mask": MASK_FILE, "posterior_noise": POSTERIOR_FILE,
            "posterior_draws": 2 if nine else 1, "reference": png, "reference_float": npy,
        })
    (PARITY / CASES_FILE).write_text(json.dumps(cases, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    print(f"wrote {len(cases)} cases to {(PARITY / CASES_FILE).relative_to(REPO)}")


if __name__ == "__main__":
    main()
