"""Reference outputs from diffusers for the engine's parity tests (test/fixtures/parity/).

* tiny-sd1: diffusers `OnnxStableDiffusionPipeline` (CPUExecutionProvider) with given latents, one
  case per scheduler (each built with `Class.from_config(pipe.scheduler.config)`), plus one without
  classifier-free guidance.
* tiny-lcm: the torch `LatentConsistencyModelPipeline` on the same torch weights that were exported.
  LCM's multistep sampling injects fresh noise after every step but the last; those noises are drawn
  here with numpy and saved, and the scheduler is made to use them, so the run is reproducible.

For every case the PNG (8-bit, as `numpy_to_pil` rounds it) and the float image before rounding
(`output_type="np"`: [H, W, 3] float32 in [0, 1], already clipped) are saved.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    LatentConsistencyModelPipeline,
    OnnxStableDiffusionPipeline,
    PNDMScheduler,
)
from diffusers.schedulers import scheduling_lcm
from PIL import Image
from transformers import CLIPTokenizer

from .folders import BuiltFolder
from .tiny_models import IMAGE_SIZE, LATENT_CHANNELS, LATENT_SIZE

PROMPT = "a red apple"
NEGATIVE = ""
STEPS = 10
CFG = 7.5
LATENTS_SEED = 1234
LATENTS_FILE = "latents.npy"
LCM_STEPS = 4
LCM_CFG = 8.0
LCM_NOISE_SEED = 4321
LCM_NOISES_FILE = "lcm-step-noises.npy"
# A plain ONNX loop must reproduce every reference this closely (the LCM reference comes from torch).
REPLAY_TOLERANCE = 1e-4



class _OnnxPipelineEulerDiscreteScheduler(EulerDiscreteScheduler):
    """EulerDiscreteScheduler whose init_noise_sigma is a Python float.

    diffusers 0.42.1 OnnxStableDiffusionPipeline does `latents * self.scheduler.init_noise_sigma`
    with numpy latents; Euler's init_noise_sigma is a torch scalar tensor, and numpy * Tensor raises
    TypeError. The value is unchanged (the float32 sigma, exactly representable as a float), and the
    product stays float32, so the math is the pipeline's own."""

    @property
    def init_noise_sigma(self):
        return float(super().init_noise_sigma)


SD1_SAMPLERS = [
    # (sampler name used by the engine, scheduler class, extra config)
    ("pndm", PNDMScheduler, {}),
    ("ddim", DDIMScheduler, {}),
    ("euler", _OnnxPipelineEulerDiscreteScheduler, {}),
    ("dpmpp_2m", DPMSolverMultistepScheduler, {}),
    ("dpmpp_2m_karras", DPMSolverMultistepScheduler, {"use_karras_sigmas": True}),
]


def _plain_config(config, class_name: str) -> dict:
    """The scheduler config the case ran with, in JSON types. Private keys are dropped, and so are
    non-finite values (DPM's lambda_min_clipped = -inf, its class default): JSON has no infinity."""
    out: dict = {"_class_name": class_name}
    for key, value in dict(config).items():
        if key.startswith("_"):
            continue
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if isinstance(value, float) and not math.isfinite(value):
            continue
        out[key] = value
    return out


def _save_image(folder: Path, stem: str, image: np.ndarray) -> tuple[str, str]:
    """image: [H, W, 3] float32 in [0, 1] (the pipeline's output_type="np")."""
    png = f"{stem}.png"
    npy = f"{stem}.npy"
    np.save(folder / npy, image.astype(np.float32))
    # numpy_to_pil: (images * 255).round().astype("uint8")
    Image.fromarray((image * 255).round().astype(np.uint8)).save(folder / png, optimize=False)
    return png, npy


def _token_ids(tokenizer: CLIPTokenizer, text: str) -> list[int]:
    return tokenizer(text, padding="max_length", max_length=tokenizer.model_max_length, truncation=True).input_ids


def _stats(image: np.ndarray) -> str:
    pixels = (image * 255).round()
    return f"std {pixels.std():5.1f}/255, {100 * np.mean((pixels == 0) | (pixels == 255)):.2f}% at 0/255"


def parity_case(
    *,
    name: str,
    model: str,
    pipeline: str,
    prompt: str,
    negative: str,
    steps: int,
    cfg: float,
    sampler: str,
    inputs: dict,
    reference: tuple[str, str],
    tokenizer: CLIPTokenizer,
    scheduler,
    scheduler_class: str | None = None,
) -> dict:
    """One parity case for a reference made at IMAGE_SIZE from LATENTS_FILE: the request, the mode's own
    `inputs` (after the latents), the reference (PNG, float image) and, for replaying it, the token ids and
    the scheduler's schedule (its config under `scheduler_class`, default the scheduler's own class name)."""
    png, npy = reference
    return {
        "name": name,
        "model": model,
        "pipeline": pipeline,
        "prompt": prompt,
        "negative": negative,
        "steps": steps,
        "cfg": cfg,
        "sampler": sampler,
        "width": IMAGE_SIZE,
        "height": IMAGE_SIZE,
        "latents": LATENTS_FILE,
        **inputs,
        "reference": png,
        "reference_float": npy,
        "prompt_ids": _token_ids(tokenizer, prompt),
        "negative_ids": _token_ids(tokenizer, negative),
        "init_noise_sigma": float(scheduler.init_noise_sigma),
        "timesteps": [float(t) for t in scheduler.timesteps],
        "scheduler_config": _plain_config(scheduler.config, scheduler_class or type(scheduler).__name__),
    }


def write_torch_case(cases_file: Path, **case) -> list[dict]:
    """Writes `cases_file` as a list of one parity_case(**case) (a reference made in torch). Returns the list."""
    cases = [parity_case(**case)]
    cases_file.write_text(json.dumps(cases, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return cases


def make_sd1_cases(sd1: BuiltFolder, parity: Path, fixtures_root: Path) -> list[dict]:
    latents = np.random.RandomState(LATENTS_SEED).standard_normal((1, LATENT_CHANNELS, LATENT_SIZE, LATENT_SIZE))
    latents = latents.astype(np.float32)
    np.save(parity / LATENTS_FILE, latents)

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    pipe = OnnxStableDiffusionPipeline.from_pretrained(
        sd1.root, provider="CPUExecutionProvider", provider_options={}, sess_options=options
    )
    pipe.set_progress_bar_config(disable=True)
    default_config = pipe.scheduler.config
    model_path = sd1.root.relative_to(fixtures_root).as_posix()

    runs = [(name, cls, extra, CFG) for name, cls, extra in SD1_SAMPLERS] + [("pndm", PNDMScheduler, {}, 1.0)]
    cases = []
    for sampler, scheduler_class, extra, cfg in runs:
        class_name = EulerDiscreteScheduler.__name__ if scheduler_class is _OnnxPipelineEulerDiscreteScheduler else scheduler_class.__name__
        pipe.scheduler = scheduler_class.from_config(default_config, **extra)
        image = pipe(
            prompt=PROMPT,
            negative_prompt=NEGATIVE,
            height=IMAGE_SIZE,
            width=IMAGE_SIZE,
            num_inference_steps=STEPS,
            guidance_scale=cfg,
            latents=latents.copy(),
            output_type="np",
        ).images[0]
        stem = f"tiny-sd1-{sampler}" + ("-nocfg" if cfg <= 1.0 else "")
        png, npy = _save_image(parity, stem, image)
        print(f"parity {stem:28s} {_stats(image)}")
        cases.append(
            parity_case(
                name=stem,
                model=model_path,
                pipeline="diffusers OnnxStableDiffusionPipeline (CPUExecutionProvider)",
                prompt=PROMPT,
                negative=NEGATIVE,
                steps=STEPS,
                cfg=cfg,
                sampler=sampler,
                inputs={},
                reference=(png, npy),
                tokenizer=pipe.tokenizer,
                scheduler=pipe.scheduler,
                scheduler_class=class_name,
            )
        )
    return cases


class _ReplayNoise:
    """Stands in for diffusers' randn_tensor inside scheduling_lcm: returns the saved noises in order."""

    def __init__(self, noises: np.ndarray):
        self.noises = noises
        self.used = 0

    def __call__(self, shape, generator=None, device=None, dtype=None, **_):
        noise = torch.from_numpy(self.noises[self.used]).to(dtype=dtype)
        if tuple(noise.shape) != tuple(shape):
            raise ValueError(f"LCM asked for noise of shape {tuple(shape)}, saved noise is {tuple(noise.shape)}")
        self.used += 1
        return noise


@torch.no_grad()
def make_lcm_case(lcm: BuiltFolder, parity: Path, fixtures_root: Path) -> dict:
    latents = np.load(parity / LATENTS_FILE)
    noises = np.random.RandomState(LCM_NOISE_SEED).standard_normal((LCM_STEPS - 1,) + latents.shape)
    noises = noises.astype(np.float32)
    np.save(parity / LCM_NOISES_FILE, noises)

    tokenizer = CLIPTokenizer.from_pretrained(lcm.root / "tokenizer")
    scheduler_config = json.loads((lcm.root / "scheduler" / "scheduler_config.json").read_text())
    pipe = LatentConsistencyModelPipeline(
        vae=lcm.models.vae,
        text_encoder=lcm.models.text_encoder,
        tokenizer=tokenizer,
        unet=lcm.models.unet,
        scheduler=scheduling_lcm.LCMScheduler.from_config(scheduler_config),
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    replay = _ReplayNoise(noises)
    original_randn = scheduling_lcm.randn_tensor
    scheduling_lcm.randn_tensor = replay
    try:
        image = pipe(
            prompt=PROMPT,
            height=IMAGE_SIZE,
            width=IMAGE_SIZE,
            num_inference_steps=LCM_STEPS,
            guidance_scale=LCM_CFG,
            latents=torch.from_numpy(latents.copy()),
            output_type="np",
        ).images[0]
    finally:
        scheduling_lcm.randn_tensor = original_randn
    if replay.used != LCM_STEPS - 1:
        raise AssertionError(f"LCM used {replay.used} injected noises, expected {LCM_STEPS - 1}")
    png, npy = _save_image(parity, "tiny-lcm-lcm", image)
    print(f"parity {'tiny-lcm-lcm':28s} {_stats(image)}")
    return {
        "name": "tiny-lcm-lcm",
        "model": lcm.root.relative_to(fixtures_root).as_posix(),
        "pipeline": "diffusers LatentConsistencyModelPipeline (torch, the weights exported to the folder)",
        "prompt": PROMPT,
        "negative": None,
        "steps": LCM_STEPS,
        "cfg": LCM_CFG,
        "sampler": "lcm",
        "width": IMAGE_SIZE,
        "height": IMAGE_SIZE,
        "latents": LATENTS_FILE,
        "step_noises": LCM_NOISES_FILE,
        "reference": png,
        "reference_float": npy,
        "prompt_ids": _token_ids(tokenizer, PROMPT),
        "negative_ids": None,
        "init_noise_sigma": float(pipe.scheduler.init_noise_sigma),
        "timesteps": [float(t) for t in pipe.scheduler.timesteps],
        "scheduler_config": _plain_config(pipe.scheduler.config, type(pipe.scheduler).__name__),
    }


def check_cases_differ(parity: Path, cases: list[dict]) -> None:
    """Every pair of references must differ visibly, or a parity test could not tell samplers apart."""
    images = {c["name"]: np.load(parity / c["reference_float"]) for c in cases}
    names = list(images)
    smallest = None
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            diff = float(np.abs(images[a] - images[b]).mean() * 255)
            if smallest is None or diff < smallest[0]:
                smallest = (diff, a, b)
    assert smallest is not None
    print(f"parity: smallest mean |difference| between two references: {smallest[0]:.2f}/255 ({smallest[1]} vs {smallest[2]})")
    if smallest[0] < 1.0:
        raise AssertionError("two parity references are nearly identical; the cases would not test much")


def _guidance_scale_embedding(w: float, dim: int) -> np.ndarray:
    """LatentConsistencyModelPipeline.get_guidance_scale_embedding for one w (dim even)."""
    half = dim // 2
    freqs = np.exp(np.arange(half, dtype=np.float32) * -(np.log(10000.0) / (half - 1)))
    emb = np.float32(w * 1000.0) * freqs
    return np.concatenate([np.sin(emb), np.cos(emb)])[None].astype(np.float32)


def replay_case(case: dict, parity: Path, fixtures_root: Path) -> float:
    """Re-runs a case with a plain loop over the folder's ONNX sessions, using only what cases.json
    and the folder hold (as an engine would), and returns max |float image - reference_float|."""
    import diffusers

    from .verify import session

    folder = fixtures_root / case["model"]
    text_encoder = session(folder / "text_encoder" / "model.onnx")
    unet = session(folder / "unet" / "model.onnx")
    decoder = session(folder / "vae_decoder" / "model.onnx")
    ids_type = np.int32 if text_encoder.get_inputs()[0].type == "tensor(int32)" else np.int64

    def embed(ids: list[int]) -> np.ndarray:
        return text_encoder.run(None, {"input_ids": np.array([ids], dtype=ids_type)})[0]

    config = dict(case["scheduler_config"])
    scheduler = getattr(diffusers, config.pop("_class_name")).from_config(config)
    scheduler.set_timesteps(case["steps"])
    latents = np.load(parity / case["latents"]) * np.float32(float(scheduler.init_noise_sigma))
    timestep_input = next(a for a in unet.get_inputs() if a.name == "timestep")
    timestep_dtype = {"tensor(float)": np.float32, "tensor(int64)": np.int64}[timestep_input.type]

    def timestep_feed(t) -> np.ndarray:
        value = np.array(float(t)).astype(timestep_dtype)
        return value if len(timestep_input.shape) == 0 else value.reshape(1)

    if case["sampler"] == "lcm":
        noises = np.load(parity / case["step_noises"])
        feeds = {
            "encoder_hidden_states": embed(case["prompt_ids"]),
            "timestep_cond": _guidance_scale_embedding(case["cfg"] - 1, unet.get_inputs()[3].shape[1]),
        }
        original_randn = scheduling_lcm.randn_tensor
        scheduling_lcm.randn_tensor = _ReplayNoise(noises)
        try:
            for t in scheduler.timesteps:
                pred = unet.run(None, {"sample": latents, "timestep": timestep_feed(t), **feeds})[0]
                step = scheduler.step(torch.from_numpy(pred), t, torch.from_numpy(latents))
                latents, denoised = step.prev_sample.numpy(), step.denoised.numpy()
        finally:
            scheduling_lcm.randn_tensor = original_randn
        final = denoised
        scaling_factor = json.loads((folder / "vae_decoder" / "config.json").read_text())["scaling_factor"]
    else:
        cfg = case["cfg"]
        do_cfg = cfg > 1.0
        hidden = embed(case["prompt_ids"])
        if do_cfg:
            hidden = np.concatenate([embed(case["negative_ids"]), hidden])  # uncond first
        for t in scheduler.timesteps:
            model_input = np.concatenate([latents] * 2) if do_cfg else latents
            model_input = scheduler.scale_model_input(torch.from_numpy(model_input), t).numpy()
            pred = unet.run(
                None, {"sample": model_input, "timestep": timestep_feed(t), "encoder_hidden_states": hidden}
            )[0]
            if do_cfg:
                uncond, text = np.split(pred, 2)
                pred = uncond + cfg * (text - uncond)
            latents = scheduler.step(torch.from_numpy(pred), t, torch.from_numpy(latents)).prev_sample.numpy()
        final = latents
        scaling_factor = 0.18215  # hard-coded by the diffusers ONNX pipelines
    decoded = decoder.run(None, {"latent_sample": (final / scaling_factor).astype(np.float32)})[0]
    image = np.clip(decoded / 2 + 0.5, 0, 1)[0].transpose(1, 2, 0)
    return float(np.abs(image - np.load(parity / case["reference_float"])).max())


def make_parity(built: dict[str, BuiltFolder], parity: Path, fixtures_root: Path) -> list[dict]:
    parity.mkdir(parents=True, exist_ok=True)
    for old in parity.iterdir():
        old.unlink()
    cases = make_sd1_cases(built["tiny-sd1"], parity, fixtures_root)
    cases.append(make_lcm_case(built["tiny-lcm"], parity, fixtures_root))
    check_cases_differ(parity, cases)
    for case in cases:
        diff = replay_case(case, parity, fixtures_root)
        print(f"parity {case['name']:28s} replayed from cases.json with onnxruntime: max |diff| {diff:.2e}")
        if diff > REPLAY_TOLERANCE:
            raise AssertionError(f"{case['name']}: a plain ONNX loop does not reproduce the reference ({diff})")
    (parity / "cases.json").write_text(json.dumps(cases, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return cases
