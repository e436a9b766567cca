"""Golden values for the TypeScript schedulers (electron/engine/schedulers), made with the real diffusers.

Run:  native-models/.venv/bin/python native-models/tools/make_scheduler_goldens.py
Writes test/fixtures/schedulers/goldens.json (read by test/unit/engine/schedulers/*.test.ts).

For each sampler name of the app (electron/shared/generation.ts SAMPLERS), each folder config below and each
prediction type, this builds the diffusers scheduler the way the engine's createScheduler does
(`SchedulerClass.from_config(folder_config, **overrides)`) and runs the pipeline loop on a tiny latent
(shape [1, 4, 4, 4]) with a fake, deterministic model:

    model_output[k] = tanh(0.5 * x_in[k]) + 0.1 * cos(t / 100 + 0.37 * k)      (float64, rounded to float32)

where x_in = scheduler.scale_model_input(latents, t) and k is the flat element index. The output depends on
the sample and on t, so the multistep history (PNDM, DPM-Solver++) matters. It records the timesteps,
init_noise_sigma, sigmas, the first scale_model_input output, every step's prev_sample (and the LCM
`denoised`), the noise diffusers drew (Euler ancestral, LCM), add_noise results, and an img2img run at
strength 0.6 (torch StableDiffusionImg2ImgPipeline.get_timesteps; LCM: its own set_timesteps(strength=)).

Arrays are stored as base64 of little-endian float32 (exact, and compact).
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import diffusers
import numpy as np
import torch
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    LCMScheduler,
    PNDMScheduler,
)
from diffusers.schedulers import scheduling_euler_ancestral_discrete, scheduling_lcm

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "test" / "fixtures" / "schedulers" / "goldens.json"

SHAPE = (1, 4, 4, 4)
IMG2IMG_STRENGTH = 0.6

# Folder configs, as scheduler_config.json files have them (the class named is whatever the folder shipped).
SD15 = {
    "_class_name": "PNDMScheduler",
    "_diffusers_version": "0.6.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "trained_betas": None,
}
CONFIGS: dict[str, dict] = {
    # Stable Diffusion 1.x.
    "sd15": SD15,
    # linspace spacing; no clip_sample / set_alpha_to_one / steps_offset, so class defaults apply
    # (DDIM: clip_sample=True, set_alpha_to_one=True).
    "linspace": {
        "_class_name": "EulerDiscreteScheduler",
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "beta_start": 0.00085,
        "num_train_timesteps": 1000,
        "interpolation_type": "linear",
        "timestep_spacing": "linspace",
        "use_karras_sigmas": False,
    },
    # linear betas (the diffusers default schedule) with trailing spacing.
    "linear_trailing": {
        "_class_name": "DDIMScheduler",
        "beta_end": 0.02,
        "beta_schedule": "linear",
        "beta_start": 0.0001,
        "clip_sample": False,
        "num_train_timesteps": 1000,
        "set_alpha_to_one": True,
        "steps_offset": 0,
        "timestep_spacing": "trailing",
    },
    # "Common Diffusion Noise Schedules and Sample Steps are Flawed": zero terminal SNR, trailing, v-prediction.
    "zero_snr": {
        "_class_name": "DDIMScheduler",
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "beta_start": 0.00085,
        "clip_sample": False,
        "num_train_timesteps": 1000,
        "rescale_betas_zero_snr": True,
        "set_alpha_to_one": False,
        "steps_offset": 1,
        "timestep_spacing": "trailing",
    },
    # squaredcos_cap_v2 betas (DPM-Solver Karras timesteps are truncated, not rounded, for this schedule).
    "cosine": {
        "_class_name": "DDIMScheduler",
        "beta_schedule": "squaredcos_cap_v2",
        "num_train_timesteps": 1000,
        "clip_sample": False,
        "set_alpha_to_one": False,
        "steps_offset": 1,
        "timestep_spacing": "leading",
    },
    # PNDM with its Runge-Kutta warm-up (skip_prk_steps false, the class default).
    "sd15_prk": {**SD15, "skip_prk_steps": False},
    # Cosine schedule with DPM-Solver's lambda_min_clipped (the diffusers docs' setting for cosine schedules):
    # the clip shortens the range the timesteps are spread over.
    "cosine_clipped": {
        "_class_name": "DPMSolverMultistepScheduler",
        "beta_schedule": "squaredcos_cap_v2",
        "num_train_timesteps": 1000,
        "lambda_min_clipped": -5.1,
        "timestep_spacing": "linspace",
    },
    # Euler with Karras sigmas from the folder config (SDXL-style leading spacing), ending at sigma_min.
    "euler_karras": {
        "_class_name": "EulerDiscreteScheduler",
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "beta_start": 0.00085,
        "num_train_timesteps": 1000,
        "interpolation_type": "linear",
        "steps_offset": 1,
        "timestep_spacing": "leading",
        "use_karras_sigmas": True,
        "final_sigmas_type": "sigma_min",
    },
    # DPM-Solver++ options: heun solver, sigma_min final sigma, no lower-order final, dynamic thresholding.
    # (Not run with Karras sigmas: those end at sigma_min, so with sigma_min appended the last step has h = 0,
    # and diffusers' heun update computes 0/0 = NaN there.)
    "dpm_variants": {
        "_class_name": "DPMSolverMultistepScheduler",
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "beta_start": 0.00085,
        "num_train_timesteps": 1000,
        "solver_type": "heun",
        "final_sigmas_type": "sigma_min",
        "lower_order_final": False,
        "thresholding": True,
        "dynamic_thresholding_ratio": 0.9,
        "sample_max_value": 1.5,
        "timestep_spacing": "leading",
        "steps_offset": 1,
    },
}
# The same with Karras sigmas and a first-order last step (lower_order_final, the default): the zero-length
# last step (sigma_min to sigma_min) is then the identity.
CONFIGS["dpm_variants_karras"] = {**CONFIGS["dpm_variants"], "lower_order_final": True}

SAMPLERS = ["euler", "euler_a", "ddim", "pndm", "dpmpp_2m", "dpmpp_2m_karras", "lcm"]

# (config, sampler names, prediction types, step counts). v-prediction runs on the SD 2.x-like configs
# (sd15 betas, zero_snr); the rest are epsilon, to keep the file small.
PLAN = [
    ("sd15", SAMPLERS, ["epsilon"], [10, 25]),
    ("sd15", SAMPLERS, ["v_prediction"], [10]),
    ("linspace", SAMPLERS, ["epsilon"], [10]),
    ("linear_trailing", SAMPLERS, ["epsilon"], [10]),
    ("zero_snr", SAMPLERS, ["v_prediction"], [10]),
    ("cosine", ["ddim", "dpmpp_2m", "dpmpp_2m_karras"], ["epsilon"], [10]),
    ("sd15_prk", ["pndm"], ["epsilon"], [10]),
    ("euler_karras", ["euler"], ["epsilon"], [10]),
    ("cosine_clipped", ["dpmpp_2m"], ["epsilon"], [10]),
    ("dpm_variants", ["dpmpp_2m"], ["epsilon"], [10]),
    ("dpm_variants_karras", ["dpmpp_2m_karras"], ["epsilon"], [10]),
]
IMG2IMG_PLAN = [("sd15", SAMPLERS, "epsilon", 10), ("linear_trailing", SAMPLERS, "epsilon", 10)]
# Timestep tables: many step counts (61 is one where np.arange gives trailing spacing an extra timestep −1).
TABLE_CONFIGS = ["sd15", "linspace", "linear_trailing"]
TABLE_STEPS = [1, 2, 3, 4, 5, 7, 13, 20, 33, 61]
# Which config's alphas_cumprod to record (one per distinct beta setup), read from DDIMScheduler.
ALPHAS_CUMPROD_CONFIGS = ["sd15", "linear_trailing", "zero_snr", "cosine"]


def make_scheduler(sampler: str, config: dict, prediction_type: str):
    cfg = {**config, "prediction_type": prediction_type}
    if sampler == "euler":
        return EulerDiscreteScheduler.from_config(cfg)
    if sampler == "euler_a":
        return EulerAncestralDiscreteScheduler.from_config(cfg)
    if sampler == "ddim":
        return DDIMScheduler.from_config(cfg)
    if sampler == "pndm":
        return PNDMScheduler.from_config(cfg)
    if sampler in ("dpmpp_2m", "dpmpp_2m_karras"):
        return DPMSolverMultistepScheduler.from_config(
            cfg,
            algorithm_type="dpmsolver++",
            solver_order=2,
            use_karras_sigmas=sampler == "dpmpp_2m_karras",
        )
    if sampler == "lcm":
        return LCMScheduler.from_config(cfg)
    raise ValueError(sampler)


def b64(t: torch.Tensor | np.ndarray) -> str:
    a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    return base64.b64encode(a.astype("<f4").tobytes()).decode("ascii")


def fake_model(x_in: torch.Tensor, t) -> torch.Tensor:
    x = x_in.detach().cpu().numpy().astype(np.float64).reshape(-1)
    k = np.arange(x.size, dtype=np.float64)
    out = np.tanh(0.5 * x) + 0.1 * np.cos(float(t) / 100.0 + 0.37 * k)
    return torch.from_numpy(out.astype(np.float32).reshape(x_in.shape))


class NoiseRecorder:
    """Wraps diffusers' randn_tensor in the ancestral schedulers' modules and keeps what it returned."""

    def __init__(self) -> None:
        self.drawn: list[torch.Tensor] = []
        self._orig = {}

    def __enter__(self):
        for mod in (scheduling_euler_ancestral_discrete, scheduling_lcm):
            self._orig[mod] = mod.randn_tensor

            def wrapped(*args, _orig=mod.randn_tensor, **kwargs):
                out = _orig(*args, **kwargs)
                self.drawn.append(out.clone())
                return out

            mod.randn_tensor = wrapped
        return self

    def __exit__(self, *exc):
        for mod, fn in self._orig.items():
            mod.randn_tensor = fn


def step(sched, sampler: str, eps: torch.Tensor, t, latents: torch.Tensor, gen: torch.Generator):
    if sampler in ("euler_a", "lcm"):
        out = sched.step(eps, t, latents, generator=gen)
    else:
        out = sched.step(eps, t, latents)
    if sampler == "lcm":
        return out.prev_sample, out.denoised
    return out.prev_sample, None


def timesteps_list(ts: torch.Tensor) -> list:
    if ts.dtype.is_floating_point:
        return [float(x) for x in ts.float().tolist()]
    return [int(x) for x in ts.tolist()]


def run_case(sampler: str, config_name: str, pred: str, steps: int, init_noise: torch.Tensor, seed: int) -> dict:
    sched = make_scheduler(sampler, CONFIGS[config_name], pred)
    sched.set_timesteps(steps)
    case: dict = {
        "sampler": sampler,
        "config": config_name,
        "predictionType": pred,
        "steps": steps,
        "timesteps": timesteps_list(sched.timesteps),
        "initNoiseSigma": float(sched.init_noise_sigma),
    }
    if sampler in ("euler", "euler_a", "dpmpp_2m", "dpmpp_2m_karras"):
        case["sigmas"] = b64(sched.sigmas)

    # add_noise on a fresh schedule (no begin index: the index comes from the timestep), epsilon runs only.
    if pred == "epsilon" and steps == 10:
        x0 = CLEAN_LATENTS
        probes = [0, len(sched.timesteps) // 2]
        case["addNoise"] = [
            {"t": timesteps_list(sched.timesteps[i : i + 1])[0], "result": b64(sched.add_noise(x0, ADD_NOISE, sched.timesteps[i : i + 1]))}
            for i in probes
        ]
        sched = make_scheduler(sampler, CONFIGS[config_name], pred)
        sched.set_timesteps(steps)

    ts = timesteps_list(sched.timesteps)
    if ts.count(ts[0]) > 1:
        # A repeated first timestep (DPM-Solver Karras on a cosine schedule: [998, 998, ...]): with no begin
        # index, diffusers starts at the *second* occurrence and runs off the end of the schedule. The engine
        # starts a fresh text-to-image schedule at step 0, which is what set_begin_index(0) does here.
        sched.set_begin_index(0)
        case["beginIndexZero"] = True

    gen = torch.Generator().manual_seed(seed)
    latents = init_noise * sched.init_noise_sigma
    samples, denoised_list = [], []
    with NoiseRecorder() as rec:
        for i, t in enumerate(sched.timesteps):
            x_in = sched.scale_model_input(latents, t)
            if i == 0 and sampler in ("euler", "euler_a"):
                case["scaledFirst"] = b64(x_in)
            eps = fake_model(x_in, t)
            latents, denoised = step(sched, sampler, eps, t, latents, gen)
            samples.append(b64(latents))
            if denoised is not None:
                denoised_list.append(b64(denoised))
    case["samples"] = samples
    if denoised_list:
        case["predOriginal"] = denoised_list
    if rec.drawn:
        case["noise"] = [b64(n) for n in rec.drawn]
    return case


def run_img2img(sampler: str, config_name: str, pred: str, steps: int, seed: int) -> dict:
    sched = make_scheduler(sampler, CONFIGS[config_name], pred)
    case: dict = {
        "sampler": sampler,
        "config": config_name,
        "predictionType": pred,
        "steps": steps,
        "strength": IMG2IMG_STRENGTH,
    }
    if sampler == "lcm":
        # pipeline_latent_consistency_img2img.py: retrieve_timesteps(..., strength=strength), no get_timesteps.
        sched.set_timesteps(steps, strength=IMG2IMG_STRENGTH)
        timesteps = sched.timesteps
    else:
        # pipeline_stable_diffusion_img2img.py get_timesteps.
        sched.set_timesteps(steps)
        init_timestep = min(int(steps * IMG2IMG_STRENGTH), steps)
        t_start = max(steps - init_timestep, 0)
        timesteps = sched.timesteps[t_start * sched.order :]
        if hasattr(sched, "set_begin_index"):
            sched.set_begin_index(t_start * sched.order)
    case["timesteps"] = timesteps_list(timesteps)
    latents = sched.add_noise(CLEAN_LATENTS, ADD_NOISE, timesteps[:1])
    case["noisedInit"] = b64(latents)
    gen = torch.Generator().manual_seed(seed)
    samples = []
    with NoiseRecorder() as rec:
        for t in timesteps:
            x_in = sched.scale_model_input(latents, t)
            eps = fake_model(x_in, t)
            latents, _ = step(sched, sampler, eps, t, latents, gen)
            samples.append(b64(latents))
    case["samples"] = samples
    if rec.drawn:
        case["noise"] = [b64(n) for n in rec.drawn]
    return case


INIT_NOISE = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
CLEAN_LATENTS = (0.8 * torch.randn(SHAPE, generator=torch.Generator().manual_seed(1), dtype=torch.float32)).float()
ADD_NOISE = torch.randn(SHAPE, generator=torch.Generator().manual_seed(2), dtype=torch.float32)


def main() -> None:
    torch.set_num_threads(1)
    cases = []
    seed = 100
    for config_name, samplers, preds, step_counts in PLAN:
        for sampler in samplers:
            for pred in preds:
                for steps in step_counts:
                    seed += 1
                    cases.append(run_case(sampler, config_name, pred, steps, INIT_NOISE, seed))
    img2img = []
    for config_name, samplers, pred, steps in IMG2IMG_PLAN:
        for sampler in samplers:
            seed += 1
            img2img.append(run_img2img(sampler, config_name, pred, steps, seed))

    tables = []
    for config_name in TABLE_CONFIGS:
        for sampler in SAMPLERS:
            for steps in TABLE_STEPS:
                row = {"sampler": sampler, "config": config_name, "steps": steps}
                try:
                    sched = make_scheduler(sampler, CONFIGS[config_name], "epsilon")
                    sched.set_timesteps(steps)
                    row["timesteps"] = timesteps_list(sched.timesteps)
                    row["initNoiseSigma"] = float(sched.init_noise_sigma)
                except ValueError as err:
                    row["error"] = str(err).split("\n")[0][:120]
                tables.append(row)

    alphas_cumprod = {name: b64(DDIMScheduler.from_config(CONFIGS[name]).alphas_cumprod) for name in ALPHAS_CUMPROD_CONFIGS}

    meta = {
        "generator": "native-models/tools/make_scheduler_goldens.py",
        "diffusers": diffusers.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "shape": list(SHAPE),
        "arrays": "base64 of little-endian float32",
        "fakeModel": "out[k] = f32(tanh(0.5*x_in[k]) + 0.1*cos(t/100 + 0.37*k)), float64 maths, x_in = scale_model_input(latents, t)",
        "initLatents": "initNoise * scheduler.init_noise_sigma",
        "img2img": "strength 0.6; torch get_timesteps + set_begin_index (LCM: set_timesteps(n, strength=0.6)); latents = add_noise(clean, addNoise, timesteps[:1])",
    }
    top = {
        "meta": meta,
        "initNoise": b64(INIT_NOISE),
        "clean": b64(CLEAN_LATENTS),
        "addNoise": b64(ADD_NOISE),
        "configs": CONFIGS,
        "alphasCumprod": alphas_cumprod,
    }
    # One case per line keeps the file diffable.
    lines = ["{"]
    for key, value in top.items():
        lines.append(f"{json.dumps(key)}:{json.dumps(value, separators=(',', ':'))},")
    lines.append('"cases":[')
    lines.append(",\n".join(json.dumps(c, separators=(",", ":")) for c in cases))
    lines.append('],\n"timestepTables":[')
    lines.append(",\n".join(json.dumps(c, separators=(",", ":")) for c in tables))
    lines.append('],\n"img2img":[')
    lines.append(",\n".join(json.dumps(c, separators=(",", ":")) for c in img2img))
    lines.append("]}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT.relative_to(REPO)}: {len(cases)} cases, {len(img2img)} img2img runs, {OUT.stat().st_size // 1024} KiB", file=sys.stderr)


if __name__ == "__main__":
    main()
