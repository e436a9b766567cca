"""A torch stand-in for the LCM rows of training.evaluate, cheap enough to run during distillation (on a GPU,
every few minutes) so checkpoints can be compared by the figure the quality bar uses, not by the loss.

- inpaint: evaluate.lcm_inpaint_eval's masked PSNR at 4 (and 2, 1) steps, guidance eval.guidance_scale
  embedded, against the teacher's own 20-step inpainting (CFG) of the same held-out images, masks, prompts
  and seeds. The teacher's pictures come either from a file written by the real evaluation pipeline
  (OnnxLdm over the exported teacher folder, `teacher_inpaint_cases`, .npz) or are computed once in torch
  with the teacher folder's sampler (its scheduler_config.json), as OnnxLdm.denoise does.
- text2img: evaluate.text_fidelity (top-5 nearest training image's emoji) at 4 steps, as a fraction of
  the teacher's top-5 at 20 steps (from the teacher folder's eval.json).

TorchLdm mirrors onnx_pipeline.OnnxLdm's LCM loop (LatentConsistencyModelPipeline: initial noise from
numpy's RandomState(seed), LCMScheduler re-noising with torch generators seeded seed + 1_000_003, the last
step's `denoised`, posterior-mean image latents, nearest-neighbour latent mask); it differs from the ONNX
graphs only by float rounding.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import diffusers
import torch
from diffusers import LCMScheduler

from .config import lcm_stage_value
from .evaluate import inpaint_cases, psnr_u8, run_inpaint, text_fidelity

LCM_EVAL_STEPS = (4, 2, 1)  # 1: no re-noising, the step closest to the teacher's own trajectory
VALIDATION_SEED_OFFSET = 500_000  # the validation cases' masks and seeds: another draw than the evaluation's


def validation_records(records: list[dict], eval_cfg: dict) -> tuple[list[dict], int]:
    """The held-out images the evaluation does not use (it takes the first eval.inpaint_images), as the only
    held-out records, and their count: weights chosen on these are not chosen on the evaluation's cases."""
    heldout = [r for r in records if r["split"] == "heldout"]
    spare = {r["index"] for r in heldout[eval_cfg["inpaint_images"]:]}
    return [r if r["index"] in spare or r["split"] != "heldout" else {**r, "split": "eval"} for r in records], len(spare)


def lcm_scheduler(cfg, stage: str) -> LCMScheduler:
    """The exported folder's sampler for a stage ("text2img" or "inpaint"): as export_onnx.lcm_scheduler_config
    (not imported: it needs onnx)."""
    s = cfg["noise_schedule"]
    lcm = cfg["train_lcm"]
    return LCMScheduler(num_train_timesteps=s["num_train_timesteps"], beta_start=s["beta_start"], beta_end=s["beta_end"],
                        beta_schedule=s["beta_schedule"], prediction_type=s["prediction_type"],
                        original_inference_steps=lcm_stage_value(lcm, "num_ddim_timesteps", stage), timestep_scaling=lcm["timestep_scaling"],
                        steps_offset=1)


class TorchLdm:
    """OnnxLdm's text_to_image / inpaint for an LCM U-Net held in torch (see the module docstring)."""

    def __init__(self, cfg, unet, text_encoder, tokens, vae, scaling_factor: float, device: torch.device,
                 scheduler_json: dict | None = None):
        self.unet, self.text_encoder, self.tokens, self.vae = unet, text_encoder, tokens, vae
        self.scaling_factor = scaling_factor
        self.device = device
        self.cond_dim = int(unet.config.time_cond_proj_dim or 0)
        if self.cond_dim:
            stage = "inpaint" if unet.config.in_channels > unet.config.out_channels else "text2img"
            self.scheduler_class, self.scheduler_config = LCMScheduler, lcm_scheduler(cfg, stage).config
        else:  # a teacher: the sampler its exported folder names
            self.scheduler_class = getattr(diffusers, scheduler_json["_class_name"])
            self.scheduler_config = {k: v for k, v in scheduler_json.items() if not k.startswith("_")}
        self.latent_channels = int(vae.config.latent_channels)
        self.latent_size = int(unet.config.sample_size)

    def guidance_embedding(self, guidance: float, n: int) -> torch.Tensor:
        w = (guidance - 1.0) * 1000.0
        half = self.cond_dim // 2
        freqs = np.exp(np.arange(half, dtype=np.float32) * -(np.log(10000.0) / (half - 1)))
        emb = np.concatenate([np.sin(w * freqs), np.cos(w * freqs)]).astype(np.float32)
        if self.cond_dim % 2:
            emb = np.pad(emb, (0, 1))
        return torch.from_numpy(np.repeat(emb[None], n, axis=0)).to(self.device)

    def initial_noise(self, seeds: list[int]) -> torch.Tensor:
        shape = (self.latent_channels, self.latent_size, self.latent_size)
        return torch.from_numpy(np.stack([np.random.RandomState(s).standard_normal(shape) for s in seeds]).astype(np.float32))

    @torch.no_grad()
    def denoise(self, prompts: list[str], steps: int, guidance: float, seeds: list[int], extra=None) -> torch.Tensor:
        """OnnxLdm.denoise for a teacher (CFG batch, the folder's sampler)."""
        if self.cond_dim:
            return self.denoise_lcm(prompts, steps, guidance, seeds, extra)
        scheduler = self.scheduler_class.from_config(self.scheduler_config)
        scheduler.set_timesteps(steps)
        n = len(prompts)
        cond = self.text_encoder(self.tokens(prompts).to(self.device)).last_hidden_state
        use_cfg = guidance > 1.0
        hidden = torch.cat([self.text_encoder(self.tokens([""] * n).to(self.device)).last_hidden_state, cond]) if use_cfg else cond
        latents = (self.initial_noise(seeds[:n]) * scheduler.init_noise_sigma).to(self.device)
        for t in scheduler.timesteps:
            model_in = torch.cat([latents, latents]) if use_cfg else latents
            model_in = scheduler.scale_model_input(model_in, t)
            if extra is not None:
                model_in = torch.cat([model_in, *(torch.cat([e, e]) if use_cfg else e for e in extra)], dim=1)
            noise_pred = self.unet(model_in, t.to(self.device), hidden).sample
            if use_cfg:
                uncond, text = noise_pred.chunk(2)
                noise_pred = uncond + guidance * (text - uncond)
            latents = scheduler.step(noise_pred, t, latents).prev_sample
        return latents

    @torch.no_grad()
    def denoise_lcm(self, prompts: list[str], steps: int, guidance: float, seeds: list[int], extra=None) -> torch.Tensor:
        scheduler = LCMScheduler.from_config(self.scheduler_config)
        scheduler.set_timesteps(steps)
        n = len(prompts)
        hidden = self.text_encoder(self.tokens(prompts).to(self.device)).last_hidden_state
        cond = self.guidance_embedding(guidance, n)
        latents = (self.initial_noise(seeds[:n]) * scheduler.init_noise_sigma).to(self.device)
        generators = [torch.Generator().manual_seed(s + 1_000_003) for s in seeds[:n]]
        denoised = latents
        for t in scheduler.timesteps:
            model_in = latents if extra is None else torch.cat([latents, *extra], dim=1)
            noise_pred = self.unet(model_in, t.to(self.device), hidden, timestep_cond=cond).sample
            out = scheduler.step(noise_pred, t, latents, generator=generators)
            latents, denoised = out.prev_sample, out.denoised
        return denoised

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> np.ndarray:
        image = (self.vae.decode(latents / self.scaling_factor).sample / 2 + 0.5).clamp(0, 1)
        return (image.permute(0, 2, 3, 1).float().cpu().numpy() * 255).round().astype(np.uint8)

    def text_to_image(self, prompts: list[str], steps: int, guidance: float, seeds: list[int]) -> np.ndarray:
        return self.decode(self.denoise(prompts, steps, guidance, seeds))

    @torch.no_grad()
    def inpaint(self, images_u8: np.ndarray, masks: np.ndarray, prompts: list[str], steps: int, guidance: float,
                seeds: list[int]) -> np.ndarray:
        images = torch.from_numpy(images_u8.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1).to(self.device)
        masked = images * torch.from_numpy(masks[:, None] < 0.5).to(self.device)
        f = masks.shape[-1] // self.latent_size
        latent_mask = torch.from_numpy(np.ascontiguousarray(masks[:, None, ::f, ::f]).astype(np.float32)).to(self.device)
        params = self.vae.encode(masked).latent_dist.parameters
        masked_latents = params[:, : self.latent_channels] * self.scaling_factor
        return self.decode(self.denoise(prompts, steps, guidance, seeds, extra=(latent_mask, masked_latents)))


def teacher_inpaint_cases(cfg, teacher_folder: Path, images_u8, records) -> dict[str, np.ndarray]:
    """The teacher's inpainting of evaluate's held-out cases, by the evaluation's own ONNX pipeline."""
    from .onnx_pipeline import OnnxLdm
    eval_cfg = cfg["eval"]
    cases = inpaint_cases(images_u8, records, eval_cfg, cfg["train_inpaint"]["mask_probabilities"], cfg["seed"])
    teacher = OnnxLdm(teacher_folder, threads=eval_cfg.get("threads", 1))
    out = run_inpaint(teacher.inpaint, cases, eval_cfg["steps"], eval_cfg["guidance_scale"], eval_cfg["batch_size"])
    return {"teacher_out": out, "originals": cases[0], "masks": cases[1].astype(np.float32)}


class ProxyEval:
    """Scores an LCM U-Net by evaluate's LCM figures (main row: 4 steps, guidance eval.guidance_scale)."""

    def __init__(self, cfg, stage: str, reference: Path, images_u8, records, text_encoder, tokens, vae, scaling_factor,
                 device: torch.device, teacher=None, cases: int | None = None, validation: bool = False):
        """reference: inpaint: the teacher's cases (.npz) or its folder's scheduler_config.json (then `teacher`,
        the teacher U-Net, draws them); text2img: the teacher folder's eval.json. validation (inpaint): score on
        the held-out images the evaluation leaves out, with other masks and seeds (validation_records), so that
        keeping the best-scoring weights does not select on the evaluation's own cases."""
        self.cfg, self.stage = cfg, stage
        self.images_u8, self.records = images_u8, records
        self.parts = (text_encoder, tokens, vae, scaling_factor, device)
        self.eval_cfg = dict(cfg["eval"])
        if cases is not None:  # a smaller check (a CPU smoke test); the figures are then not evaluate's
            self.eval_cfg.update(inpaint_images=cases, train_prompts=cases, heldout_prompts=cases)
        self.teacher_text = None
        self.info: dict = {}
        if stage == "inpaint":
            case_records, seed = records, cfg["seed"]
            if validation:
                case_records, spare = validation_records(records, self.eval_cfg)
                if not spare:
                    raise SystemExit("no held-out images are left beside the evaluation's for validation")
                self.eval_cfg["inpaint_images"] = min(spare, cases or spare)
                seed += VALIDATION_SEED_OFFSET
                self.info["validation_images"] = self.eval_cfg["inpaint_images"]
                if Path(reference).suffix == ".npz":
                    raise SystemExit("validation cases need the teacher U-Net (pass its scheduler_config.json), not the evaluation's .npz")
            self.cases = inpaint_cases(images_u8, case_records, self.eval_cfg, cfg["train_inpaint"]["mask_probabilities"], seed)
            self.masked = np.broadcast_to((self.cases[1] >= 0.5)[..., None], self.cases[0].shape)
            if Path(reference).suffix == ".npz":
                ref = np.load(reference)
                if not (np.array_equal(ref["originals"], self.cases[0])
                        and np.array_equal(ref["masks"], self.cases[1].astype(np.float32))):
                    raise SystemExit(f"{reference} holds other inpainting cases than this evaluation draws")
                self.teacher_out = ref["teacher_out"]
                self.info["reference"] = "onnx"
            else:
                model = TorchLdm(cfg, teacher, *self.parts, scheduler_json=json.loads(Path(reference).read_text()))
                self.teacher_out = run_inpaint(model.inpaint, self.cases, self.eval_cfg["steps"], self.eval_cfg["guidance_scale"], 100)
                self.info["reference"] = "torch"
            self.info["teacher_psnr_vs_original"] = psnr_u8(self.teacher_out, self.cases[0], self.masked)
        else:
            self.teacher_text = json.loads(Path(reference).read_text())["text_fidelity"]

    def __call__(self, unet) -> dict:
        was_training = unet.training
        unet.eval()
        model = TorchLdm(self.cfg, unet, *self.parts)
        g = float(self.eval_cfg["guidance_scale"])
        batch = 100
        result: dict = {}
        try:
            for steps in LCM_EVAL_STEPS:
                if self.stage == "inpaint":
                    out = run_inpaint(model.inpaint, self.cases, steps, g, batch)
                    result[f"psnr_vs_teacher_{steps}"] = psnr_u8(out, self.teacher_out, self.masked)
                    result[f"psnr_vs_original_{steps}"] = psnr_u8(out, self.cases[0], self.masked)
                else:
                    fid = text_fidelity(model, self.images_u8, self.records, {**self.eval_cfg, "steps": steps, "batch_size": batch},
                                        self.cfg["seed"])
                    for split in ("train", "heldout"):
                        if split in fid and split in self.teacher_text and self.teacher_text[split]["top5"] > 0:
                            result[f"top5_{split}_{steps}"] = fid[split]["top5"]
                            result[f"ratio_{split}_{steps}"] = fid[split]["top5"] / self.teacher_text[split]["top5"]
        finally:
            unet.train(was_training)
        if self.stage == "inpaint":
            result["score"] = result["psnr_vs_teacher_4"]
        else:
            ratios = [result[k] for k in ("ratio_train_4", "ratio_heldout_4") if k in result]
            result["score"] = min(ratios) if ratios else -math.inf
        return result
