"""What the LCM inpainting bar (masked PSNR against the teacher's own inpainting at 4 steps) can reach, on the
evaluation's own cases (training.evaluate.lcm_inpaint_eval's images, masks, prompts and seeds):

- the teacher against itself from other initial noise, and the shipped LCM at 4 steps, per kind of mask
  (whole picture / part of it): the pooled figure is dominated by the whole-picture masks' pixels;
- the ceiling of the standard LCM sampler: LCMScheduler's 1, 2 and 4 steps (its timesteps, re-noising with
  fresh noise between steps) where the consistency function is exact, i.e. the teacher's guided DDIM ODE on
  the distillation's timestep grid solved to t = 0 (what training.train_lcm's target "ode" trains towards).

  python tools/lcm_ceiling.py [--config FILE] [--work-dir DIR] [--out FILE.json]

Prints one JSON object. CPU, one thread: ~10 minutes for the emoji-ldm cases.
"""
from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from training.config import add_common_args, lcm_stage_value, load_config  # noqa: E402
from training.evaluate import OTHER_NOISE_SEED_OFFSET, inpaint_cases, psnr_u8, run_inpaint  # noqa: E402
from training.lcm_proxy import TorchLdm  # noqa: E402
from training.models import limit_threads  # noqa: E402
from training.onnx_pipeline import OnnxLdm  # noqa: E402
from training.train_lcm import GuidedDdimTeacher, boundary_scalings, load_teacher  # noqa: E402
from training.train_unet import load_latent_data, make_noise_scheduler  # noqa: E402


class ExactConsistency(torch.nn.Module):
    """Stands in for an LCM U-Net: returns the noise prediction for which LCMScheduler's `denoised` is the
    teacher's guided DDIM ODE solution from (x, t) to t = 0 (guidance 1 + ω, the skipping-step grid), as
    training.train_lcm's target "ode" computes it (GuidedDdimTeacher)."""

    def __init__(self, solver: GuidedDdimTeacher, omega: float, timestep_scaling: float, cond_dim: int):
        super().__init__()
        teacher = solver.teacher
        self.solver, self.ac, self.omega, self.scaling = solver, solver.ac, omega, timestep_scaling
        self.config = types.SimpleNamespace(time_cond_proj_dim=cond_dim, in_channels=teacher.config.in_channels,
                                            out_channels=teacher.config.out_channels, sample_size=teacher.config.sample_size)

    @torch.no_grad()
    def forward(self, model_in, t, hidden, timestep_cond=None):
        t = int(t)
        latent = self.config.out_channels
        x, extra = model_in[:, :latent], model_in[:, latent:]
        n = len(x)
        solved = self.solver.ode_solution(x, torch.full((n,), t), hidden, extra, torch.full((n,), self.omega))
        a = self.ac[t]
        c_skip, c_out = boundary_scalings(torch.tensor([t]), self.scaling)
        pred_x0 = (solved - c_skip * x) / c_out
        return types.SimpleNamespace(sample=(x - a.sqrt() * pred_x0) / (1 - a).sqrt())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    cfg = load_config(args)
    eval_cfg = cfg["eval"]
    limit_threads(1)
    data = load_latent_data(cfg)
    cases = inpaint_cases(data.images_u8, data.records, eval_cfg, cfg["train_inpaint"]["mask_probabilities"], cfg["seed"])
    originals, masks, _prompts, seeds = cases
    g, steps, batch = float(eval_cfg["guidance_scale"]), eval_cfg["steps"], eval_cfg["batch_size"]
    teacher_onnx = OnnxLdm(cfg.inpaint_export_dir, threads=1)
    teacher_out = run_inpaint(teacher_onnx.inpaint, cases, steps, g, batch)
    other = run_inpaint(teacher_onnx.inpaint, (*cases[:3], [s + OTHER_NOISE_SEED_OFFSET for s in seeds]), steps, g, batch)
    whole = masks.reshape(len(masks), -1).mean(1) > 0.999
    kinds = {"whole": whole, "part": ~whole, "all": np.ones(len(whole), bool)}

    def by_kind(out: np.ndarray) -> dict:
        return {k: round(psnr_u8(out[sel], teacher_out[sel], np.broadcast_to((masks[sel] >= 0.5)[..., None], originals[sel].shape)), 2)
                for k, sel in kinds.items()}

    masked_pixels = (masks >= 0.5).sum()
    report: dict = {"cases": len(originals), "cases_by_kind": {k: int(v.sum()) for k, v in kinds.items()},
                    "masked_pixel_share": {k: round(float((masks[v] >= 0.5).sum() / masked_pixels), 3) for k, v in kinds.items()},
                    "reference": f"the teacher's inpainting ({steps} steps, CFG {g}, its folder's sampler), masked PSNR dB",
                    "teacher_other_noise": by_kind(other)}
    if cfg.inpaint_lcm_export_dir.exists():
        lcm = OnnxLdm(cfg.inpaint_lcm_export_dir, threads=1)
        report["shipped_lcm_4_steps"] = by_kind(run_inpaint(lcm.inpaint, cases, 4, g, batch))

    teacher, text_encoder, _ = load_teacher(cfg, "inpaint", True)
    teacher.eval()
    with torch.no_grad():
        uncond = text_encoder(data.tokens([""])).last_hidden_state
    lcm_cfg = cfg["train_lcm"]
    n_ddim = int(lcm_stage_value(lcm_cfg, "num_ddim_timesteps", "inpaint"))
    solver = GuidedDdimTeacher(teacher, uncond, make_noise_scheduler(cfg).alphas_cumprod.float(),
                               cfg["noise_schedule"]["num_train_timesteps"] // n_ddim, torch.device("cpu"))
    exact = ExactConsistency(solver, g - 1.0, lcm_cfg["timestep_scaling"], lcm_cfg["time_cond_proj_dim"])
    model = TorchLdm(cfg, exact, text_encoder, data.tokens, data.vae, data.scaling_factor, torch.device("cpu"))
    report["exact_consistency_lcm_sampler"] = {"num_ddim_timesteps": n_ddim}
    for n_steps in (1, 2, 4):
        report["exact_consistency_lcm_sampler"][f"{n_steps}_steps"] = by_kind(run_inpaint(model.inpaint, cases, n_steps, g, 100))
        print(json.dumps({f"exact_{n_steps}": report["exact_consistency_lcm_sampler"][f"{n_steps}_steps"]}), file=sys.stderr, flush=True)
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
