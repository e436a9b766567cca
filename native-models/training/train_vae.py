"""Stage 2: train the AutoencoderKL (64×64 RGB ↔ 4×16×16 latents).

Loss = l1·|x − x̂| + mse·(x − x̂)² + kl·KL(q(z|x) ‖ N(0, I)), on random crops (the VAE is fully
convolutional, so crops cost a fraction of full images and evaluation uses full 64×64 images).
Resumes from <work>/runs/vae/state.pt. On completion writes vae.pt (weights, config, latent scaling
factor = 1 / std of the posterior means over the training images, as in the SD recipe where 0.18215
made the latents roughly unit-variance).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from tqdm import tqdm

from .common import (EMA, RunState, atomic_save, load_images, psnr, restore_rng, rng_state,
                     seed_everything, to_model_range)
from .config import add_common_args, load_config
from .models import build_vae, count_parameters, limit_threads


def random_crops(batch: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    if size >= batch.shape[-1]:
        return batch
    n, _, h, w = batch.shape
    ys = torch.randint(0, h - size + 1, (n,), generator=generator)
    xs = torch.randint(0, w - size + 1, (n,), generator=generator)
    return torch.stack([batch[i, :, y:y + size, x:x + size] for i, (y, x) in enumerate(zip(ys.tolist(), xs.tolist()))])


@torch.no_grad()
def evaluate_psnr(vae, images: torch.Tensor, batch_size: int = 64) -> float:
    """Mean PSNR (dB) of 8-bit reconstructions from the posterior mean."""
    vae.eval()
    scores = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size]
        recon = vae.decode(vae.encode(x).latent_dist.mode()).sample
        recon8 = ((recon.clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1
        scores.append(psnr(recon8, x))
    vae.train()
    return float(torch.cat(scores).mean())


@torch.no_grad()
def latent_std(vae, images: torch.Tensor, batch_size: int = 64) -> float:
    vae.eval()
    means = [vae.encode(images[s:s + batch_size]).latent_dist.mode() for s in range(0, len(images), batch_size)]
    vae.train()
    return float(torch.cat(means).std())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_args(parser)
    parser.add_argument("--max-minutes", type=float, default=None, help="stop (with a checkpoint) after this long")
    parser.add_argument("--finalize", action="store_true",
                        help="end training at the checkpoint's step and write vae.pt (use when PSNR is already good)")
    args = parser.parse_args()
    cfg = load_config(args)
    train_cfg = cfg["train_vae"]
    limit_threads(train_cfg.get("threads", 1))
    run = RunState(cfg.stage_dir("vae"), train_cfg["save_every_minutes"], args.max_minutes)
    if run.done:
        print("vae: already done", flush=True)
        return

    generator = seed_everything(cfg["seed"])
    images_u8, records = load_images(cfg.data_dir)
    train_idx = np.array([r["index"] for r in records if r["split"] == "train"])
    heldout_idx = np.array([r["index"] for r in records if r["split"] == "heldout"])
    images = to_model_range(images_u8)
    heldout = images[heldout_idx] if len(heldout_idx) else images[:8]

    vae = build_vae(cfg["vae"])
    optimizer = torch.optim.AdamW(vae.parameters(), lr=train_cfg["lr"], weight_decay=train_cfg["weight_decay"])
    ema = EMA(vae, train_cfg["ema_decay"])
    step = 0
    state = run.load()
    if state:
        vae.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        ema.load_state_dict(state["ema"])
        restore_rng(state["rng"], generator)
        step = state["step"]
        print(f"vae: resumed at step {step}", flush=True)
    print(f"vae: {count_parameters(vae) / 1e6:.2f}M parameters, {len(train_idx)} train / {len(heldout_idx)} held-out images",
          flush=True)

    def checkpoint() -> None:
        run.save({"model": vae.state_dict(), "optimizer": optimizer.state_dict(), "ema": ema.state_dict(),
                  "rng": rng_state(generator), "step": step})

    total = step if args.finalize else train_cfg["steps"]
    warmup = train_cfg["warmup_steps"]
    bar = tqdm(total=total, initial=step, desc="vae", dynamic_ncols=True, mininterval=5)
    vae.train()
    window: list[float] = []
    started = time.monotonic()
    while step < total and not run.should_stop():
        lr = train_cfg["lr"] * min(1.0, (step + 1) / warmup)
        for group in optimizer.param_groups:
            group["lr"] = lr
        pick = torch.from_numpy(train_idx)[torch.randint(0, len(train_idx), (train_cfg["batch_size"],), generator=generator)]
        x = random_crops(images[pick], train_cfg["crop_size"], generator)
        if train_cfg.get("hflip", True):
            flip = torch.rand(len(x), generator=generator) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample(generator=None)).sample
        l1 = (recon - x).abs().mean()
        mse = (recon - x).pow(2).mean()
        kl = posterior.kl().mean() / x[0].numel()  # KL per pixel value, so the weight is size-independent
        loss = train_cfg["l1_weight"] * l1 + train_cfg["mse_weight"] * mse + train_cfg["kl_weight"] * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), train_cfg["grad_clip"])
        optimizer.step()
        step += 1
        ema.update(vae, step)
        window.append(loss.item())
        bar.update(1)
        if step % train_cfg["log_every_steps"] == 0:
            record = {"step": step, "loss": float(np.mean(window)), "l1": float(l1), "mse": float(mse), "kl": float(kl),
                      "lr": lr, "elapsed_s": round(time.monotonic() - started, 1)}
            window.clear()
            if step % train_cfg["eval_every_steps"] == 0:
                record["heldout_psnr"] = evaluate_psnr(vae, heldout)
            run.log(record)
            bar.set_postfix(loss=f"{record['loss']:.4f}", psnr=record.get("heldout_psnr", ""))
        if run.save_due():
            checkpoint()
    bar.close()
    checkpoint()
    if step < total:
        print(f"vae: stopped at step {step}/{total}; rerun the same command to resume", flush=True)
        return

    # Export the EMA weights if they reconstruct better than the raw weights.
    raw_psnr = evaluate_psnr(vae, heldout)
    raw_state = {k: v.clone() for k, v in vae.state_dict().items()}
    vae.load_state_dict(ema.shadow)
    ema_psnr = evaluate_psnr(vae, heldout)
    if raw_psnr > ema_psnr:
        vae.load_state_dict(raw_state)
    # Round to fp16 once here: the committed checkpoint and the ONNX export store fp16 weights, and the
    # U-Net stages must see exactly the VAE that ships.
    with torch.no_grad():
        for tensor in vae.state_dict().values():
            if tensor.dtype == torch.float32:
                tensor.copy_(tensor.half().float())
    best_psnr = evaluate_psnr(vae, heldout)
    std = latent_std(vae, images[train_idx])
    scaling_factor = 1.0 / std
    vae_config = dict(cfg["vae"], scaling_factor=scaling_factor)
    atomic_save({"model": vae.state_dict(), "config": vae_config}, run.dir / "vae.pt")
    summary = {"steps": step, "heldout_psnr": best_psnr, "raw_psnr": raw_psnr, "ema_psnr": ema_psnr,
               "weights": "ema" if ema_psnr >= raw_psnr else "raw", "latent_std": std, "scaling_factor": scaling_factor}
    run.mark_done(summary)
    print(f"vae: done {summary}", flush=True)


if __name__ == "__main__":
    main()
