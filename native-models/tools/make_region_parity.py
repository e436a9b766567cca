"""Torch references for the engine's regional prompts (electron/engine/pipelines/regions.ts).

Run:  native-models/.venv/bin/python native-models/tools/make_region_parity.py
Writes test/fixtures/parity/region-cases.json, region-*.png/.npy (references), region-mask-*.png (the
masks), region-init.png and region-posterior-noise.npy (read by test/unit/engine/pipelines/regions.test.ts).

The torch modules are the fixtures' own: make_fixtures.py builds them from seeds (tiny-sd1: ModelSpec(seed=1000),
tiny-sd1-inpaint: seed 2000 with a 9-channel U-Net, tiny-sdxl: build_sdxl_models(seed=7000)); each is checked
against the committed ONNX U-Net first. The loop is written out (diffusers' U-Net and schedulers, no
pipeline, since no diffusers pipeline blends regions) and does MultiDiffusion's region blend:

    m_r = avg_pool2d(mask_r / 255, 8)                      the mask at latent resolution
    a_r = w_r · m_r,  A = Σ a_r,  b = max(0, 1 − A)
    α_0 = b / (b + A),  α_r = a_r / (b + A)
    ε̂ = Σ_k α_k · (u + g · (c_k − u))                      k = 0 the main prompt, 1… the regions

from the same initial latents (parity/latents.npy, sdxl-latents.npy) and, where a VAE encodes a picture,
the same posterior noise. Prompts are plain (no weights), so the CLIPTokenizer's padded ids are what the
engine's A1111 chunker gives.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, EulerDiscreteScheduler, PNDMScheduler, StableDiffusionXLPipeline
from PIL import Image
from transformers import CLIPTokenizer

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, HERE.as_posix())

from fixtures_lib.parity import LATENTS_FILE, _save_image, _stats  # noqa: E402
from fixtures_lib.sdxl import LATENTS_FILE as SDXL_LATENTS_FILE, SdxlFolder, _pipeline, build_sdxl_models  # noqa: E402
from fixtures_lib.tiny_models import IMAGE_SIZE, ModelSpec, UNetSpec, build_models  # noqa: E402
from fixtures_lib.tokenizer_files import build_tiny_vocabulary  # noqa: E402

FIXTURES = REPO / "test" / "fixtures"
MODELS = FIXTURES / "models"
PARITY = FIXTURES / "parity"
CASES_FILE = "region-cases.json"
MERGE_COUNT = 500  # make_fixtures.py MERGE_COUNT
VAE_FACTOR = 8
STEPS = 8
CFG = 7.5
SDXL_CFG = 5.0
IMG2IMG_STRENGTH = 0.6
POSTERIOR_SEED = 9753
POSTERIOR_FILE = "region-posterior-noise.npy"
INIT_FILE = "region-init.png"
INPAINT_MASK_FILE = "region-inpaint-mask.png"

MAIN = "a red apple"
NEGATIVE = "blurry"
REGIONS = [
    # (prompt, mask file, weight)
    ("a green leaf", "region-mask-left.png", 1.0),
    ("a blue plate", "region-mask-disc.png", 0.7),
]


def write_inputs() -> None:
    """Two masks at 64×64: the left 28 columns (not a multiple of 8, so one latent column is half covered)
    and a disc with a soft edge overlapping it; a test picture and an inpaint mask."""
    left = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    left[:, :28] = 255
    Image.fromarray(left).save(PARITY / REGIONS[0][1], optimize=False)
    y, x = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
    r = np.sqrt((x - 40) ** 2 + (y - 36) ** 2)
    disc = np.clip((22 - r) / 6, 0, 1)  # 1 inside radius 16, falling to 0 at 22
    Image.fromarray(np.round(disc * 255).astype(np.uint8)).save(PARITY / REGIONS[1][1], optimize=False)
    disc_in = (x - IMAGE_SIZE / 2) ** 2 + (y - IMAGE_SIZE / 2) ** 2 < (IMAGE_SIZE / 4) ** 2
    rgb = np.stack([np.where(disc_in, 220, np.round(x / IMAGE_SIZE * 255)), np.where(disc_in, 40, np.round(y / IMAGE_SIZE * 255)), np.where(disc_in, 40, 128)], -1)
    Image.fromarray(rgb.astype(np.uint8)).save(PARITY / INIT_FILE, optimize=False)
    mask = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    mask[8:56, 12:60] = 255
    Image.fromarray(mask).save(PARITY / INPAINT_MASK_FILE, optimize=False)


def blend_weights() -> list[torch.Tensor]:
    """α_0 (main), α_1 … α_R at latent resolution, [1, 1, h, w] each."""
    masks = [torch.from_numpy(np.asarray(Image.open(PARITY / f), dtype=np.float32) / 255)[None, None] for _, f, _ in REGIONS]
    a = [w * F.avg_pool2d(m, VAE_FACTOR) for m, (_, _, w) in zip(masks, REGIONS, strict=True)]
    total = sum(a)
    base = torch.clamp(1 - total, min=0)
    norm = base + total
    return [base / norm] + [x / norm for x in a]


def ids(tokenizer: CLIPTokenizer, text: str) -> torch.Tensor:
    return torch.tensor([tokenizer(text, padding="max_length", max_length=tokenizer.model_max_length, truncation=True).input_ids])


def check_unet(unet, folder: Path, hidden: int, extra: dict | None = None) -> None:
    """The rebuilt torch U-Net is the folder's ONNX one (so the reference runs the committed weights)."""
    session = ort.InferenceSession(str(folder / "unet" / "model.onnx"), providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(5)
    sample = torch.randn(1, unet.config.in_channels, 8, 8, generator=g)
    states = torch.randn(1, 77, hidden, generator=g)
    feeds = {"sample": sample.numpy(), "encoder_hidden_states": states.numpy()}
    t_input = next(i for i in session.get_inputs() if i.name == "timestep")
    t_value = np.array(500.0 if t_input.type == "tensor(float)" else 500).astype(np.float32 if t_input.type == "tensor(float)" else np.int64)
    feeds["timestep"] = t_value if len(t_input.shape) == 0 else t_value.reshape(1)
    kwargs = {}
    if extra:
        feeds.update({k: v.numpy() for k, v in extra.items()})
        kwargs["added_cond_kwargs"] = extra
    onnx_out = session.run(None, feeds)[0]
    with torch.no_grad():
        torch_out = unet(sample, torch.tensor(500.0), states, **kwargs).sample.numpy()
    diff = float(np.abs(onnx_out - torch_out).max())
    if diff > 1e-4:
        raise SystemExit(f"the rebuilt torch U-Net differs from {folder}/unet ({diff}); rebuild with make_fixtures.py first")


def blend(preds: list[torch.Tensor], uncond: torch.Tensor | None, cfg: float, alphas: list[torch.Tensor]) -> torch.Tensor:
    out = torch.zeros_like(preds[0])
    for c, alpha in zip(preds, alphas, strict=True):
        guided = uncond + cfg * (c - uncond) if uncond is not None else c
        out = out + alpha * guided
    return out


@torch.no_grad()
def sd_case(models, tokenizer, scheduler, latents, alphas, *, init=None, posterior=None, strength=1.0, inpaint_mask=None, cfg=CFG) -> np.ndarray:
    """SD 1.x: txt2img, img2img (strength) or 9-channel inpaint, one U-Net call per prompt per step."""
    te = models.text_encoder
    embed = lambda text: te(ids(tokenizer, text)).last_hidden_state  # noqa: E731
    uncond = embed(NEGATIVE)
    conds = [embed(MAIN)] + [embed(p) for p, _, _ in REGIONS]
    vae = models.vae
    scaling = vae.config.scaling_factor
    noise = torch.from_numpy(latents.copy())

    def encode(x: torch.Tensor, z: np.ndarray) -> torch.Tensor:
        dist = vae.encode(x).latent_dist
        return (dist.mean + dist.std * torch.from_numpy(z.copy())) * scaling

    scheduler.set_timesteps(STEPS)
    timesteps = scheduler.timesteps
    extra = None
    if inpaint_mask is not None:
        m = (torch.from_numpy(np.asarray(inpaint_mask, dtype=np.float32) / 255) >= 0.5).float()[None, None]
        image = init * (m < 0.5)
        masked_latents = encode(image, posterior[0])
        latent_mask = F.interpolate(m, size=(IMAGE_SIZE // VAE_FACTOR,) * 2)  # nearest, as the pipeline
        extra = torch.cat([latent_mask, masked_latents], dim=1)
        z = noise * scheduler.init_noise_sigma
    elif init is not None:
        start = STEPS - int(STEPS * strength)
        timesteps = timesteps[start:]
        z = scheduler.add_noise(encode(init, posterior[0]), noise, timesteps[:1])
    else:
        z = noise * scheduler.init_noise_sigma
    for t in timesteps:
        x = scheduler.scale_model_input(z, t)
        if extra is not None:
            x = torch.cat([x, extra], dim=1)
        u = models.unet(x, t, uncond).sample
        preds = [models.unet(x, t, c).sample for c in conds]
        z = scheduler.step(blend(preds, u, cfg, alphas), t, z).prev_sample
    decoded = vae.decode(z / scaling).sample
    return (decoded / 2 + 0.5).clamp(0, 1)[0].permute(1, 2, 0).numpy()


@torch.no_grad()
def sdxl_case(folder: SdxlFolder, latents, alphas) -> np.ndarray:
    """SDXL txt2img: both encoders per prompt (the pipeline's encode_prompt), each region its own pooled
    embedding, the main prompt's time ids; the empty negative is zeros (force_zeros_for_empty_prompt)."""
    pipe = _pipeline(folder, StableDiffusionXLPipeline)
    unet = folder.models.unet
    pos, neg, pooled, neg_pooled = pipe.encode_prompt(MAIN, negative_prompt=None, do_classifier_free_guidance=True)
    regions = [pipe.encode_prompt(p, do_classifier_free_guidance=False) for p, _, _ in REGIONS]
    time_ids = pipe._get_add_time_ids((IMAGE_SIZE, IMAGE_SIZE), (0, 0), (IMAGE_SIZE, IMAGE_SIZE), torch.float32, int(pooled.shape[-1]))
    scheduler = EulerDiscreteScheduler.from_config(folder.scheduler_config)
    scheduler.set_timesteps(STEPS)
    z = torch.from_numpy(latents.copy()) * scheduler.init_noise_sigma
    conds = [(pos, pooled)] + [(r[0], r[2]) for r in regions]
    for t in scheduler.timesteps:
        x = scheduler.scale_model_input(z, t)
        u = unet(x, t, neg, added_cond_kwargs={"text_embeds": neg_pooled, "time_ids": time_ids}).sample
        preds = [unet(x, t, c, added_cond_kwargs={"text_embeds": p, "time_ids": time_ids}).sample for c, p in conds]
        z = scheduler.step(blend(preds, u, SDXL_CFG, alphas), t, z).prev_sample
    vae = folder.models.vae
    decoded = vae.decode(z / vae.config.scaling_factor).sample
    return (decoded / 2 + 0.5).clamp(0, 1)[0].permute(1, 2, 0).numpy()


def main() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    write_inputs()
    vocab = build_tiny_vocabulary(MODELS / "tiny-sd1" / "tokenizer" / "merges.txt", MERGE_COUNT)
    alphas = blend_weights()
    latents = np.load(PARITY / LATENTS_FILE)
    posterior = np.random.RandomState(POSTERIOR_SEED).standard_normal((1,) + latents.shape).astype(np.float32)
    np.save(PARITY / POSTERIOR_FILE, posterior)
    init = torch.from_numpy(np.asarray(Image.open(PARITY / INIT_FILE), dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    regions = [{"prompt": p, "mask": f, "weight": w} for p, f, w in REGIONS]
    cases: list[dict] = []
    images: dict[str, np.ndarray] = {}

    def record(name: str, model: str, sampler: str, image: np.ndarray, cfg: float, negative: str, extra: dict) -> None:
        png, npy = _save_image(PARITY, name, image)
        images[name] = image
        print(f"parity {name:28s} {_stats(image)}")
        cases.append({
            "name": name, "model": f"models/{model}", "prompt": MAIN, "negative": negative, "steps": STEPS, "cfg": cfg,
            "sampler": sampler, "width": IMAGE_SIZE, "height": IMAGE_SIZE,
            "latents": SDXL_LATENTS_FILE if model == "tiny-sdxl" else LATENTS_FILE,
            "regions": regions, **extra, "reference": png, "reference_float": npy,
        })

    sd1 = build_models(ModelSpec(seed=1000), vocab.size, vocab.bos_id, vocab.eos_id)
    check_unet(sd1.unet, MODELS / "tiny-sd1", 32)
    tokenizer = CLIPTokenizer.from_pretrained(str(MODELS / "tiny-sd1" / "tokenizer"))
    config = json.loads((MODELS / "tiny-sd1" / "scheduler" / "scheduler_config.json").read_text())
    image = sd_case(sd1, tokenizer, PNDMScheduler.from_config(config), latents, alphas)
    record("region-sd1-txt2img-pndm", "tiny-sd1", "pndm", image, CFG, NEGATIVE, {"mode": "txt2img"})
    plain = sd_case(sd1, tokenizer, PNDMScheduler.from_config(config), latents, [torch.ones(1, 1, 8, 8)] + [torch.zeros(1, 1, 8, 8)] * len(REGIONS))
    image = sd_case(sd1, tokenizer, DDIMScheduler.from_config(config), latents, alphas, init=init, posterior=posterior, strength=IMG2IMG_STRENGTH)
    record("region-sd1-img2img-ddim", "tiny-sd1", "ddim", image, CFG, NEGATIVE,
           {"mode": "img2img", "strength": IMG2IMG_STRENGTH, "init_image": INIT_FILE, "posterior_noise": POSTERIOR_FILE})

    inpaint = build_models(ModelSpec(seed=2000, unet=UNetSpec(**{**UNetSpec().__dict__, "in_channels": 9})), vocab.size, vocab.bos_id, vocab.eos_id)
    check_unet(inpaint.unet, MODELS / "tiny-sd1-inpaint", 32)
    config = json.loads((MODELS / "tiny-sd1-inpaint" / "scheduler" / "scheduler_config.json").read_text())
    image = sd_case(inpaint, tokenizer, DDIMScheduler.from_config(config), latents, alphas, init=init, posterior=posterior,
                    inpaint_mask=Image.open(PARITY / INPAINT_MASK_FILE))
    record("region-sd1-inpaint-ddim", "tiny-sd1-inpaint", "ddim", image, CFG, NEGATIVE,
           {"mode": "inpaint", "strength": 1.0, "init_image": INIT_FILE, "mask": INPAINT_MASK_FILE, "posterior_noise": POSTERIOR_FILE})

    sdxl_models = build_sdxl_models(vocab, 7000)
    sdxl_config = json.loads((MODELS / "tiny-sdxl" / "scheduler" / "scheduler_config.json").read_text())
    sdxl = SdxlFolder("tiny-sdxl", MODELS / "tiny-sdxl", sdxl_models, sdxl_config, False)
    hidden = sdxl_models.unet.config.cross_attention_dim
    check_unet(sdxl_models.unet, sdxl.root, hidden, {"text_embeds": torch.randn(1, 40, generator=torch.Generator().manual_seed(6)),
                                                    "time_ids": torch.tensor([[64.0, 64, 0, 0, 64, 64]])})
    sdxl_latents = np.load(PARITY / SDXL_LATENTS_FILE)
    image = sdxl_case(sdxl, sdxl_latents, alphas)
    record("region-sdxl-txt2img-euler", "tiny-sdxl", "euler", image, SDXL_CFG, "", {"mode": "txt2img"})

    # The regions must change the picture, or the cases test little.
    effect = float(np.abs(images["region-sd1-txt2img-pndm"] - plain).mean() * 255)
    print(f"parity regions vs the main prompt alone: mean {effect:.1f}/255")
    if effect < 1.0:
        raise AssertionError("the regions barely change the picture")
    (PARITY / CASES_FILE).write_text(json.dumps(cases, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    print(f"wrote {len(cases)} cases to {(PARITY / CASES_FILE).relative_to(REPO)}")


if __name__ == "__main__":
    main()
