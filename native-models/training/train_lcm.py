"""Stage 6: latent consistency distillation (LCD, Luo et al. 2023, "Latent Consistency Models") of the
text-to-image and the inpainting U-Nets into few-step models with the guidance scale embedded.

  python -m training.train_lcm --stage text2img   # teacher: the text-to-image U-Net  → runs/lcm/
  python -m training.train_lcm --stage inpaint    # teacher: the 9-channel inpainting U-Net → runs/lcm_inpaint/

Recipe (as diffusers' examples/consistency_distillation/train_lcm_distill_sd_wds.py and the authors'
script; notation of wave2 reference §4):
- teacher: the finished (or, with --allow-snapshot, the running) stage's EMA U-Net with its frozen text
  encoder, epsilon prediction, SD's DDPM schedule (T = 1000);
- student: the teacher's config plus `time_cond_proj_dim` (a Linear from the guidance embedding to the
  timestep features, added before the time MLP), initialised from the teacher's weights; the new Linear
  starts at zero (so at step 0 the student computes exactly what the teacher does; the reference script
  keeps PyTorch's default init there); target network θ⁻ = EMA of the student (μ = ema_decay: 0.95; 0.999
  for the inpainting stage, whose target "ode" does not use θ⁻: there it is only the weights that ship);
- skipping-step DDIM solver on N = num_ddim_timesteps timesteps (20 for both stages now, so k = T / N = 50
  and t_n ∈ {49, 99, …, 999}; the reference script's 50 gives k = 20), t_{n−k} = max(t_n − k, 0);
- per batch: ω ~ U[w_min, w_max] (the pipeline embeds ω = guidance_scale − 1, so the engine's guidance
  scale g means ω = g − 1); x_{t_n} = α·x0 + σ·ε; student f(x_{t_n}, t_n, ω, c) = c_skip·x + c_out·x̂0;
  the teacher's guided DDIM step x_{t_{n−k}} = √ᾱ_prev·x̂0_ω + √(1−ᾱ_prev)·ε̂_ω with
  x̂0_ω = x̂0_c + ω(x̂0_c − x̂0_u), ε̂_ω likewise (uncond = the empty prompt); target f_θ⁻(x_{t_{n−k}}, t_{n−k}, ω, c);
  boundary scalings c_skip = σ_d² / ((s·t)² + σ_d²), c_out = s·t / √((s·t)² + σ_d²) with s = timestep_scaling
  (10, as LCMScheduler), σ_d = 0.5; pseudo-Huber loss √(d² + c²) − c (c = huber_c) or L2.
- target "ode" (train_lcm.target, per stage; the inpainting stage's): instead of f_θ⁻ at t_{n−k}, the
  teacher's guided DDIM steps on from x_{t_{n−k}} down the same grid to t = 0, where f is the identity:
  the value a perfect consistency function takes at x_{t_n}, without bootstrapping through θ⁻ (which is
  still the EMA of the student, and still what the export ships).
- any train_lcm value may be per stage ({"text2img": a, "inpaint": b}): the config sets steps, lr,
  cond_lr_scale (the guidance projection's lr multiple, a second optimizer group), ema_decay, target and
  num_ddim_timesteps so.
- inpainting: the 9-channel input [latents | mask | masked-image latents] carries the same mask and masked
  image for student, teacher and target (random brush / box / whole masks as the inpainting stage).

Resumes from runs/<stage>/state.pt (student, target, optimizer, RNG, step), saved every
save_every_minutes, on SIGTERM/Ctrl-C and at --max-minutes; done.json marks the end; unet.pt holds the
target network's weights (what the export ships). TRAIN_THREADS overrides train_lcm.threads.

Accelerator and experiments: --device cuda runs the networks there (the random draws stay on the CPU's
generators, so a run's batches do not depend on the device); --lr, --ema-decay, --huber-c, --batch-size,
--warmup-steps, --steps override train_lcm's values (recorded in unet.pt); --run-dir puts the run in
another folder, so several variants can train side by side; --stop-at ends a run at a wall-clock time;
--proxy FILE scores the target network every --proxy-every-minutes with training.lcm_proxy (the figure
the quality bar uses) and keeps the best-scoring target weights in best.pt (--proxy-validation: scored on
held-out images the evaluation leaves out, kept in best_validation.pt, so choosing them is not choosing on
the evaluation's cases).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from diffusers import UNet2DConditionModel
from transformers import CLIPTextModel

from .common import RunState, atomic_save, resume, rng_state, seed_everything, train_loop
from .config import Config, add_common_args, lcm_stage_value, load_config
from .models import count_parameters, limit_threads
from .train_unet import latent_mask, load_derived_stage, load_latent_data, load_text2img, make_noise_scheduler, mask_batch

STAGE_DIRS = {"text2img": "lcm", "inpaint": "lcm_inpaint"}
# train_lcm values a command line may override (experiments; the config stays the recipe of record).
OVERRIDES = {"lr": float, "cond_lr_scale": float, "target": str, "ema_decay": float, "huber_c": float, "batch_size": int, "warmup_steps": int, "loss_type": str}
TEACHER_DIRS = {"text2img": "unet", "inpaint": "inpaint"}
STAGE_SEED_OFFSETS = {"text2img": 10, "inpaint": 11}
SIGMA_DATA = 0.5


def guidance_embedding(w: torch.Tensor, dim: int) -> torch.Tensor:
    """diffusers' get_guidance_scale_embedding (LatentConsistencyModelPipeline; the engine's
    guidanceEmbedding): w·1000, sinusoidal, [sin | cos], zero-padded when dim is odd. w = ω = scale − 1."""
    w = w.float() * 1000.0
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=w.device) * -(math.log(10000.0) / (half - 1)))
    angles = w[:, None] * freqs[None, :]
    emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    if dim % 2 == 1:
        emb = torch.nn.functional.pad(emb, (0, 1))
    return emb


def boundary_scalings(t: torch.Tensor, timestep_scaling: float) -> tuple[torch.Tensor, torch.Tensor]:
    """c_skip(t), c_out(t) as LCMScheduler.get_scalings_for_boundary_condition_discrete."""
    scaled = t.float() * timestep_scaling
    c_skip = SIGMA_DATA ** 2 / (scaled ** 2 + SIGMA_DATA ** 2)
    c_out = scaled / (scaled ** 2 + SIGMA_DATA ** 2) ** 0.5
    return c_skip, c_out


def lcm_unet_from(teacher: UNet2DConditionModel, cond_dim: int) -> UNet2DConditionModel:
    """The teacher's architecture plus time_cond_proj_dim, with the teacher's weights; the new
    time_embedding.cond_proj starts at zero, so the student starts as the teacher."""
    # Without the private keys: "_use_default_values" would make from_config drop the new value again.
    config = {k: v for k, v in dict(teacher.config).items() if not k.startswith("_")}
    config["time_cond_proj_dim"] = cond_dim
    student = UNet2DConditionModel.from_config(config)
    result = student.load_state_dict(teacher.state_dict(), strict=False)
    unexpected_new = [k for k in result.missing_keys if not k.startswith("time_embedding.cond_proj.")]
    if unexpected_new or result.unexpected_keys:
        raise AssertionError(f"student/teacher mismatch: missing {unexpected_new}, unexpected {result.unexpected_keys}")
    with torch.no_grad():
        student.time_embedding.cond_proj.weight.zero_()
    return student


def unet_digest(state: dict[str, torch.Tensor]) -> str:
    """Identifies a teacher by its weights rounded to fp16 (what the committed checkpoints hold)."""
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        value = state[key].detach().cpu()
        digest.update(value.half().numpy().tobytes() if value.is_floating_point() else value.numpy().tobytes())
    return digest.hexdigest()[:16]


def load_teacher(cfg: Config, stage: str, allow_snapshot: bool) -> tuple[UNet2DConditionModel, CLIPTextModel, dict]:
    """The teacher U-Net and the text encoder it was trained with (EMA weights)."""
    unet, text_encoder, info = load_text2img(cfg, allow_snapshot)
    if stage == "text2img":
        return unet, text_encoder, info
    stage_dir = cfg.runs_dir / "inpaint"
    if not (stage_dir / "unet.pt").exists() and not allow_snapshot:
        raise SystemExit(f"the inpainting stage has not finished: {stage_dir / 'unet.pt'} is missing "
                         "(finish it, or pass --allow-snapshot to use its latest checkpoint)")
    loaded = load_derived_stage(stage_dir)
    if loaded is None:
        raise SystemExit(f"no inpainting U-Net in {stage_dir}")
    inpaint_unet, inpaint_info, te_state = loaded
    text_encoder.load_state_dict(te_state)
    return inpaint_unet, text_encoder.eval(), {"step": inpaint_info["step"], "snapshot": inpaint_info["snapshot"]}


@torch.no_grad()
def ema_update(target: torch.nn.Module, source: torch.nn.Module, decay: float) -> None:
    t_params = list(target.parameters())
    s_params = list(source.parameters())
    torch._foreach_lerp_(t_params, s_params, 1.0 - decay)


def model_input(x: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
    """A U-Net's input: the latents, then an inpainting U-Net's extra channels."""
    return x if extra is None else torch.cat([x, extra], dim=1)


class GuidedDdimTeacher:
    """The teacher's CFG-guided DDIM solver on the skipping-step grid (step k = `skip`), guidance 1 + ω per
    sample, the empty prompt's states as the unconditional ones; `extra`: the inpainting U-Net's channels
    after the latents ([mask | masked-image latents]), the same for both halves of the CFG batch."""

    def __init__(self, teacher, uncond_hidden: torch.Tensor, alphas_cumprod: torch.Tensor, skip: int, device: torch.device):
        self.teacher, self.uncond, self.ac, self.skip, self.device = teacher, uncond_hidden, alphas_cumprod, skip, device

    @torch.no_grad()
    def step(self, x, t_from, t_to, hidden, extra, omega):
        """One guided DDIM step from t_from to t_to (tensors, per sample)."""
        n = len(x)
        a_from = self.ac[t_from.cpu()].view(-1, 1, 1, 1).to(self.device)
        a_to = self.ac[t_to.cpu()].view(-1, 1, 1, 1).to(self.device)
        both = self.teacher(model_input(torch.cat([x, x]), None if extra is None else torch.cat([extra, extra])),
                            torch.cat([t_from, t_from]), torch.cat([hidden, self.uncond.expand(n, -1, -1)])).sample
        eps_c, eps_u = both.chunk(2)
        x0_c = (x - (1 - a_from).sqrt() * eps_c) / a_from.sqrt()
        x0_u = (x - (1 - a_from).sqrt() * eps_u) / a_from.sqrt()
        w = omega.view(-1, 1, 1, 1)
        x0_w = x0_c + w * (x0_c - x0_u)
        eps_w = eps_c + w * (eps_c - eps_u)
        return a_to.sqrt() * x0_w + (1 - a_to).sqrt() * eps_w

    @torch.no_grad()
    def ode_solution(self, x, t, hidden, extra, omega):
        """The guided DDIM ODE from x at t (per sample) down the grid to t = 0, where the consistency function
        is the identity (c_skip(0) = 1): the exact target of f(x, t)."""
        x, t = x.clone(), t.clone()
        while bool((t > 0).any()):
            live = (t > 0).nonzero().flatten()
            t_to = (t[live] - self.skip).clamp(min=0)
            x[live] = self.step(x[live], t[live], t_to, hidden[live], None if extra is None else extra[live], omega[live])
            t[live] = t_to
        return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_args(parser)
    parser.add_argument("--stage", choices=sorted(STAGE_DIRS), required=True)
    parser.add_argument("--max-minutes", type=float, default=None, help="stop (with a checkpoint) after this long")
    parser.add_argument("--finalize", action="store_true", help="end training at the checkpoint's step and write the weights")
    parser.add_argument("--allow-snapshot", action="store_true",
                        help="distil from the teacher stage's latest checkpoint if it has not finished")
    parser.add_argument("--device", default="cpu", help="torch device of the networks (cpu, cuda, cuda:1, …)")
    parser.add_argument("--run-dir", type=Path, default=None, help="the run's folder (default: runs/lcm or runs/lcm_inpaint)")
    parser.add_argument("--stop-at", type=float, default=None, help="stop (with a checkpoint) at this Unix time")
    for name, kind in OVERRIDES.items():
        parser.add_argument("--" + name.replace("_", "-"), type=kind, default=None, help=f"override train_lcm.{name}")
    parser.add_argument("--proxy", type=Path, default=None,
                        help="score the target network with training.lcm_proxy: inpaint: the teacher's cases (.npz), "
                             "text2img: the teacher folder's eval.json")
    parser.add_argument("--proxy-every-minutes", type=float, default=2.0)
    parser.add_argument("--proxy-validation", action="store_true",
                        help="inpaint: score on the held-out images the evaluation leaves out (other masks and seeds), "
                             "so best.pt is not chosen on the evaluation's cases")
    parser.add_argument("--proxy-cases", type=int, default=None,
                        help="score on this many images / prompts per split (default: the eval config's, as evaluate)")
    parser.add_argument("--steps", type=int, default=None, help="train to this step (overrides train_lcm.steps)")
    args = parser.parse_args()
    cfg = load_config(args)
    inpaint = args.stage == "inpaint"
    # Any train_lcm value may be given per stage ({"text2img": a, "inpaint": b}); this run takes its stage's.
    train_cfg = {k: (v[args.stage] if isinstance(v, dict) and set(v) == set(STAGE_DIRS) else v) for k, v in cfg["train_lcm"].items()}
    for name in OVERRIDES:
        if getattr(args, name) is not None:
            train_cfg[name] = getattr(args, name)
    if args.steps is not None:
        train_cfg["steps"] = args.steps
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    limit_threads(train_cfg.get("threads", 1))
    max_minutes = args.max_minutes
    if args.stop_at is not None:
        left = max(args.stop_at - time.time(), 1.0) / 60
        max_minutes = left if max_minutes is None else min(max_minutes, left)
    run_dir = args.run_dir if args.run_dir is not None else cfg.stage_dir(STAGE_DIRS[args.stage])
    run_dir.mkdir(parents=True, exist_ok=True)
    run = RunState(run_dir, train_cfg["save_every_minutes"], max_minutes)
    if run.done:
        print(f"lcm {args.stage}: already done", flush=True)
        return

    seed = cfg["seed"] + STAGE_SEED_OFFSETS[args.stage]
    generator = seed_everything(seed)
    rng = np.random.default_rng(seed)
    data = load_latent_data(cfg, device)
    images, vae, scaling_factor, vae_digest = data.images, data.vae, data.scaling_factor, data.vae_digest
    latent_size = data.latent_size
    tokens = data.tokens
    alphas_cumprod = make_noise_scheduler(cfg).alphas_cumprod.float()
    num_train = cfg["noise_schedule"]["num_train_timesteps"]

    state = run.load()
    teacher, text_encoder, teacher_info = load_teacher(cfg, args.stage, args.allow_snapshot or state is not None)
    teacher.eval().requires_grad_(False)
    text_encoder.eval().requires_grad_(False)
    teacher_digest = unet_digest(teacher.state_dict())
    cond_dim = train_cfg["time_cond_proj_dim"]
    student = lcm_unet_from(teacher, cond_dim)
    target = lcm_unet_from(teacher, cond_dim).eval().requires_grad_(False)
    for module in (teacher, text_encoder, student, target, vae):
        module.to(device)
    # The guidance embedding's projection is the one new layer (it starts at zero): cond_lr_scale × lr for it,
    # in a group of its own (only then: a run's state.pt holds its optimizer's groups, so keep the scale when resuming).
    cond_lr_scale = float(train_cfg.get("cond_lr_scale", 1.0))
    groups: list[dict] = [{"params": list(student.parameters())}]
    if cond_lr_scale != 1.0:
        cond_ids = {id(p) for p in student.time_embedding.cond_proj.parameters()}
        groups = [{"params": [p for p in student.parameters() if id(p) not in cond_ids]},
                  {"params": list(student.time_embedding.cond_proj.parameters()), "lr_scale": cond_lr_scale}]
    optimizer = torch.optim.AdamW(groups, lr=train_cfg["lr"], weight_decay=train_cfg["weight_decay"])
    step = 0
    restart_step = 0
    if state:
        if state.get("vae_digest") not in (None, vae_digest):
            raise SystemExit(f"{run.state_path} was trained on another VAE latent space; delete it to start this stage again")
        if state.get("teacher_digest") not in (None, teacher_digest):
            raise SystemExit(f"{run.state_path} was distilled from another teacher ({state['teacher_digest']} ≠ {teacher_digest}); "
                             "delete it to start this stage again")
        teacher_info = state.get("teacher", teacher_info)
        student.load_state_dict(state["student"])
        target.load_state_dict(state["target"])
        step, restart_step, generator, rng = resume(state, optimizer, generator, rng, seed, f"lcm {args.stage}")
    else:
        print(f"lcm {args.stage}: student initialised from the teacher (step {teacher_info['step']}"
              f"{', snapshot' if teacher_info['snapshot'] else ''})", flush=True)
    n_ddim = int(lcm_stage_value(train_cfg, "num_ddim_timesteps", args.stage))
    print(f"lcm {args.stage}: U-Net {count_parameters(student) / 1e6:.2f}M parameters, time_cond_proj_dim {cond_dim}, "
          f"{n_ddim} DDIM timesteps, ω ∈ [{train_cfg['w_min']}, {train_cfg['w_max']}], "
          f"{torch.get_num_threads()} thread(s)", flush=True)

    skip = num_train // n_ddim
    ddim_timesteps = torch.arange(1, n_ddim + 1) * skip - 1
    scaling = train_cfg["timestep_scaling"]
    target_kind = str(train_cfg.get("target", "ema"))
    if target_kind not in ("ema", "ode"):
        raise SystemExit(f"train_lcm.target must be 'ema' or 'ode', not {target_kind!r}")
    with torch.no_grad():
        uncond_hidden = text_encoder(tokens([""]).to(device)).last_hidden_state

    def checkpoint(step: int) -> None:
        run.save({"student": student.state_dict(), "target": target.state_dict(), "optimizer": optimizer.state_dict(),
                  "rng": rng_state(generator), "np_rng": rng.bit_generator.state, "step": step, "vae_digest": vae_digest,
                  "teacher_digest": teacher_digest, "teacher": teacher_info, "unet_config": dict(student.config)})

    def conditioning(pick: torch.Tensor, batch_rng: np.random.Generator, gen: torch.Generator) -> torch.Tensor | None:
        """Inpainting: [mask | masked-image latents] for each picked image (the U-Net's extra channels),
        masks drawn as in the inpainting stage."""
        if not inpaint:
            return None
        mask = mask_batch(len(pick), images.shape[-1], batch_rng, cfg["train_inpaint"]["mask_probabilities"])
        masked = (images[pick] * (mask < 0.5)).to(device)
        with torch.no_grad():
            # On an accelerator the sample's noise is still drawn from the CPU generator (diffusers' randn_tensor).
            masked_latents = vae.encode(masked).latent_dist.sample(generator=gen) * scaling_factor
        return torch.cat([latent_mask(mask.to(device), latent_size), masked_latents], dim=1)

    solver = GuidedDdimTeacher(teacher, uncond_hidden, alphas_cumprod, skip, device)

    def losses(latents, noise, hidden, extra, j, omega) -> torch.Tensor:
        """The per-sample consistency distance: the student at t_n against, after one guided DDIM step of the
        teacher to t_{n−k}, the target network there (target "ema", LCD), or the teacher's guided ODE solved
        on to t = 0 (target "ode")."""
        latents, noise, hidden, omega = (v.to(device) for v in (latents, noise, hidden, omega))
        t_start = ddim_timesteps[j]
        t_end = (t_start - skip).clamp(min=0)
        a_start = alphas_cumprod[t_start].view(-1, 1, 1, 1).to(device)
        a_end = alphas_cumprod[t_end].view(-1, 1, 1, 1).to(device)
        t_start, t_end = t_start.to(device), t_end.to(device)
        x_t = a_start.sqrt() * latents + (1 - a_start).sqrt() * noise
        w_emb = guidance_embedding(omega, cond_dim)
        skip_s, out_s = (v.view(-1, 1, 1, 1) for v in boundary_scalings(t_start, scaling))
        skip_e, out_e = (v.view(-1, 1, 1, 1) for v in boundary_scalings(t_end, scaling))
        eps = student(model_input(x_t, extra), t_start, hidden, timestep_cond=w_emb).sample
        pred = skip_s * x_t + out_s * (x_t - (1 - a_start).sqrt() * eps) / a_start.sqrt()
        with torch.no_grad():
            x_prev = solver.step(x_t, t_start, t_end, hidden, extra, omega)
            if target_kind == "ode":
                tgt = solver.ode_solution(x_prev, t_end, hidden, extra, omega)
            else:
                eps_t = target(model_input(x_prev, extra), t_end, hidden, timestep_cond=w_emb).sample
                tgt = skip_e * x_prev + out_e * (x_prev - (1 - a_end).sqrt() * eps_t) / a_end.sqrt()
        diff = (pred.float() - tgt.float()).flatten(1)
        if train_cfg["loss_type"] == "huber":
            c = train_cfg["huber_c"]
            return (torch.sqrt(diff.pow(2) + c * c) - c).mean(1)
        return diff.pow(2).mean(1)

    # A fixed held-out batch (noise, timesteps, ω, masks) so the logged validation loss is comparable over time.
    val_gen, val_rng, val_pick, val_captions, val_latents, val_noise = data.validation_batch(train_cfg["val_images"], cfg["seed"] + 199)
    val_j = torch.randint(0, n_ddim, (len(val_pick),), generator=val_gen)
    val_omega = train_cfg["w_min"] + (train_cfg["w_max"] - train_cfg["w_min"]) * torch.rand(len(val_pick), generator=val_gen)
    with torch.no_grad():
        val_hidden = text_encoder(tokens(val_captions).to(device)).last_hidden_state
    val_extra = conditioning(val_pick, val_rng, val_gen)

    @torch.no_grad()
    def validation_loss() -> float:
        student.eval()
        value = float(losses(val_latents, val_noise, val_hidden, val_extra, val_j, val_omega).mean())
        student.train()
        return value

    proxy = None
    best_score = -math.inf
    if args.proxy is not None:
        from .lcm_proxy import ProxyEval
        proxy = ProxyEval(cfg, args.stage, args.proxy, data.images_u8, data.records, text_encoder, tokens, vae, scaling_factor, device,
                          teacher=teacher, cases=args.proxy_cases, validation=args.proxy_validation)
        run.log({"step": step, "proxy_reference": proxy.info})
        print(f"lcm {args.stage}: proxy reference {json.dumps(proxy.info)}", flush=True)
        # Validation scores and the evaluation's cases' scores are not comparable: each keeps its own best.
        best_path = run.dir / ("best_validation.pt" if args.proxy_validation else "best.pt")
        if best_path.exists():
            best_score = torch.load(best_path, map_location="cpu", weights_only=False)["proxy"]["score"]
    last_proxy = time.monotonic()

    def score_target(step: int) -> None:
        """Logs the proxy figures of the target network; keeps its weights (fp16) when they score best."""
        nonlocal best_score, last_proxy
        t0 = time.monotonic()
        result = proxy(target)
        run.log({"step": step, "proxy": result, "proxy_s": round(time.monotonic() - t0, 1)})
        print(f"lcm {args.stage}: step {step} proxy {json.dumps(result)}", flush=True)
        if result["score"] > best_score:
            best_score = result["score"]
            atomic_save({"unet": {k: v.detach().cpu().half() for k, v in target.state_dict().items()},
                         "unet_config": dict(target.config), "steps": step, "vae_digest": vae_digest,
                         "teacher_digest": teacher_digest, "teacher": teacher_info, "train_lcm": train_cfg, "proxy": result},
                        best_path)
        last_proxy = time.monotonic()

    # train_lcm.steps: one count for both stages, or {"text2img": n, "inpaint": m}.
    total = step if args.finalize else int(lcm_stage_value(train_cfg, "steps", args.stage))
    student.train()

    def batch_loss() -> tuple[torch.Tensor, dict]:
        pick, captions, latents, noise = data.train_batch(train_cfg["batch_size"], generator, rng, train_cfg["captions"])
        j = torch.randint(0, n_ddim, (len(pick),), generator=generator)
        omega = train_cfg["w_min"] + (train_cfg["w_max"] - train_cfg["w_min"]) * torch.rand(len(pick), generator=generator)
        with torch.no_grad():
            hidden = text_encoder(tokens(captions).to(device)).last_hidden_state
        return losses(latents, noise, hidden, conditioning(pick, rng, generator), j, omega).mean(), {}

    def proxy_due(step: int) -> None:
        if proxy is not None and time.monotonic() - last_proxy >= args.proxy_every_minutes * 60:
            score_target(step)

    step = train_loop(run, f"lcm {args.stage}", train_cfg, optimizer, list(student.parameters()), step=step, total=total,
                      lr_at=lambda s: train_cfg["lr"] * min(1.0, (s - restart_step + 1) / train_cfg["warmup_steps"]),
                      batch_loss=batch_loss, after_step=lambda _: ema_update(target, student, train_cfg["ema_decay"]),
                      validate=validation_loss, val_key="val_loss", checkpoint=checkpoint, postfix="{loss:.5f}", mininterval=30,
                      every_step=proxy_due)
    if proxy is not None and not args.finalize:
        score_target(step)
    if step < total:
        print(f"lcm {args.stage}: stopped at step {step}/{total}; rerun the same command to resume", flush=True)
        return
    atomic_save({"unet": {k: v.cpu() for k, v in target.state_dict().items()}, "unet_config": dict(target.config), "steps": step, "vae_digest": vae_digest,
                 "teacher_digest": teacher_digest, "teacher": teacher_info, "train_lcm": train_cfg}, run.dir / "unet.pt")
    summary = {"steps": step, "val_loss_student": validation_loss(), "teacher": teacher_info}
    run.mark_done(summary)
    print(f"lcm {args.stage}: done {json.dumps(summary)}", flush=True)


if __name__ == "__main__":
    main()
