"""Stage 2: train the AutoencoderKL (64×64 RGB ↔ 4×16×16 latents).

Loss = l1·|x − x̂| + mse·(x − x̂)² + kl·KL(q(z|x) ‖ N(0, I)), on random crops (the VAE is fully
convolutional, so crops cost a fraction of full images and evaluation uses full 64×64 images).
Resumes from <work>/runs/vae/state.pt. On completion writes vae.pt (weights, config, latent scaling
factor = 1 / std of the posterior means over the training images, as in the SD recipe where 0.18215
made the latents roughly unit-variance).

--decoder-only fine-tunes the decoder of the finished VAE with the encoder frozen (stage folder
runs/vae_decoder/, config "train_vae_decoder" over "train_vae"), as SD's ft-MSE VAE did. The latent
space stays the same, so U-Nets trained on it stay valid; on completion vae.pt gets the new decoder.
The frozen encoder's posteriors of every image and its mirror image are computed once and cached, and the
decoder learns from samples of them on latent-aligned random crops, so a step costs no encoder pass.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from .common import (EMA, RunState, atomic_save, load_images, psnr, restore_rng, rng_state,
                     seed_everything, to_model_range, train_loop)
from .common import DONE_FILE
from .config import add_common_args, deep_merge, load_config
from .models import build_vae, count_parameters, limit_threads
from .train_unet import weights_digest


def random_crops(batch: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    if size >= batch.shape[-1]:
        return batch
    n, _, h, w = batch.shape
    ys = torch.randint(0, h - size + 1, (n,), generator=generator)
    xs = torch.randint(0, w - size + 1, (n,), generator=generator)
    return torch.stack([batch[i, :, y:y + size, x:x + size] for i, (y, x) in enumerate(zip(ys.tolist(), xs.tolist(), strict=True))])


@torch.no_grad()
def encode_all(vae, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """[N, 2·C, h, w] posterior mean ‖ logvar of every image (the encoder is frozen in --decoder-only)."""
    vae.eval()
    params = torch.cat([vae.encode(images[s:s + batch_size]).latent_dist.parameters for s in range(0, len(images), batch_size)])
    vae.train()
    return params


def aligned_crops(x: torch.Tensor, params: torch.Tensor, size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random window of pictures and their latents, on latent-cell boundaries."""
    factor = x.shape[-1] // params.shape[-1]
    if size >= x.shape[-1]:
        return x, params
    cells, n = size // factor, params.shape[-1]
    ys = torch.randint(0, n - cells + 1, (len(x),), generator=generator).tolist()
    xs = torch.randint(0, n - cells + 1, (len(x),), generator=generator).tolist()
    pictures = torch.stack([x[i, :, y * factor:(y + cells) * factor, c * factor:(c + cells) * factor] for i, (y, c) in enumerate(zip(ys, xs, strict=True))])
    latents = torch.stack([params[i, :, y:y + cells, c:c + cells] for i, (y, c) in enumerate(zip(ys, xs, strict=True))])
    return pictures, latents


def lr_at(train_cfg: dict, step: int) -> float:
    """Piecewise-constant learning rate: "lr_drops" lists [step, lr] pairs that take over from "lr"."""
    lr = train_cfg["lr"]
    for boundary, value in train_cfg.get("lr_drops", []):
        if step >= boundary:
            lr = value
    return lr


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
    parser.add_argument("--decoder-only", action="store_true", help="fine-tune the finished VAE's decoder (encoder frozen)")
    args = parser.parse_args()
    cfg = load_config(args)
    decoder_only = args.decoder_only
    name = "vae_decoder" if decoder_only else "vae"
    train_cfg = deep_merge(cfg["train_vae"], cfg.raw.get("train_vae_decoder", {})) if decoder_only else cfg["train_vae"]
    limit_threads(train_cfg.get("threads", 1))
    run = RunState(cfg.stage_dir(name), train_cfg["save_every_minutes"], args.max_minutes)
    if run.done:
        print(f"{name}: already done", flush=True)
        return
    base = None
    if decoder_only:
        base_path = cfg.runs_dir / "vae" / "vae.pt"
        if not base_path.exists():
            raise SystemExit(f"--decoder-only needs the finished VAE: {base_path} is missing")
        base = torch.load(base_path, map_location="cpu", weights_only=False)

    generator = seed_everything(cfg["seed"])
    images_u8, records = load_images(cfg.data_dir)
    train_idx = np.array([r["index"] for r in records if r["split"] == "train"])
    heldout_idx = np.array([r["index"] for r in records if r["split"] == "heldout"])
    images = to_model_range(images_u8)
    heldout = images[heldout_idx] if len(heldout_idx) else images[:8]

    vae = build_vae(base["config"] if base else cfg["vae"])
    if base:
        vae.load_state_dict(base["model"])
        vae.encoder.requires_grad_(False)
        vae.quant_conv.requires_grad_(False)
    trainable = [p for p in vae.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=train_cfg["lr"], weight_decay=train_cfg["weight_decay"])
    ema = EMA(vae, train_cfg["ema_decay"])
    step = 0
    state = run.load()
    if state:
        vae.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        ema.load_state_dict(state["ema"])
        restore_rng(state["rng"], generator)
        step = state["step"]
        print(f"{name}: resumed at step {step}", flush=True)
    print(f"{name}: {count_parameters(vae) / 1e6:.2f}M parameters, {len(train_idx)} train / {len(heldout_idx)} held-out images",
          flush=True)

    def checkpoint(step: int) -> None:
        run.save({"model": vae.state_dict(), "optimizer": optimizer.state_dict(), "ema": ema.state_dict(),
                  "rng": rng_state(generator), "step": step})

    cached = None
    if base and not args.finalize:
        # The encoder is frozen for the whole stage; the name pins the encoder the cache was made with.
        cache_path = run.dir / f"posteriors-{weights_digest(base['model'])}.pt"
        if cache_path.exists():
            cached = torch.load(cache_path)
        else:
            cached = (encode_all(vae, images), encode_all(vae, images.flip(-1)))
            atomic_save(cached, cache_path)
        print(f"{name}: cached the frozen encoder's posteriors of {len(images)} images (and their mirror images)", flush=True)

    total = step if args.finalize else train_cfg["steps"]
    warmup = train_cfg["warmup_steps"]
    vae.train()

    def batch_loss() -> tuple[torch.Tensor, dict]:
        pick = torch.from_numpy(train_idx)[torch.randint(0, len(train_idx), (train_cfg["batch_size"],), generator=generator)]
        if cached is not None:
            # Encoder frozen: decode samples of the cached posteriors (no encoder pass per step).
            x, params = images[pick], cached[0][pick]
            if train_cfg.get("hflip", True):
                flip = (torch.rand(len(x), generator=generator) < 0.5)[:, None, None, None]
                x, params = torch.where(flip, x.flip(-1), x), torch.where(flip, cached[1][pick], params)
            x, params = aligned_crops(x, params, train_cfg["crop_size"], generator)
            mean, logvar = params.chunk(2, dim=1)
            z = mean + torch.exp(0.5 * logvar.clamp(-30, 20)) * torch.randn(mean.shape, generator=generator)
            recon = vae.decode(z).sample
            kl = torch.zeros(())
        else:
            x = random_crops(images[pick], train_cfg["crop_size"], generator)
            if train_cfg.get("hflip", True):
                flip = torch.rand(len(x), generator=generator) < 0.5
                x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            posterior = vae.encode(x).latent_dist
            recon = vae.decode(posterior.sample(generator=None)).sample
            kl = posterior.kl().mean() / x[0].numel()  # KL per pixel value, so the weight is size-independent
        l1 = (recon - x).abs().mean()
        mse = (recon - x).pow(2).mean()
        loss = train_cfg["l1_weight"] * l1 + train_cfg["mse_weight"] * mse + train_cfg["kl_weight"] * kl
        return loss, {"l1": l1, "mse": mse, "kl": kl}

    step = train_loop(run, name, train_cfg, optimizer, trainable, step=step, total=total,
                      lr_at=lambda s: lr_at(train_cfg, s) * min(1.0, (s + 1) / warmup), batch_loss=batch_loss,
                      after_step=lambda s: ema.update(vae, s), validate=lambda: evaluate_psnr(vae, heldout), val_key="heldout_psnr",
                      checkpoint=checkpoint, val_name="psnr")
    if step < total:
        print(f"{name}: stopped at step {step}/{total}; rerun the same command to resume", flush=True)
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
    if base:
        # Keep the encoder bit-exact (EMA arithmetic can flip low bits): the latent space must not move.
        vae.encoder.load_state_dict({k[len("encoder."):]: v for k, v in base["model"].items() if k.startswith("encoder.")})
        vae.quant_conv.load_state_dict({k[len("quant_conv."):]: v for k, v in base["model"].items() if k.startswith("quant_conv.")})
    best_psnr = evaluate_psnr(vae, heldout)
    summary = {"steps": step, "heldout_psnr": best_psnr, "raw_psnr": raw_psnr, "ema_psnr": ema_psnr,
               "weights": "ema" if ema_psnr >= raw_psnr else "raw"}
    if base:
        vae_dir = cfg.runs_dir / "vae"
        atomic_save({"model": vae.state_dict(), "config": base["config"]}, vae_dir / "vae.pt")
        vae_done = json.loads((vae_dir / DONE_FILE).read_text())
        vae_done["decoder_finetune"] = summary
        vae_done["heldout_psnr"] = best_psnr
        (vae_dir / DONE_FILE).write_text(json.dumps(vae_done, indent=1))
    else:
        std = latent_std(vae, images[train_idx])
        summary.update(latent_std=std, scaling_factor=1.0 / std)
        atomic_save({"model": vae.state_dict(), "config": dict(cfg["vae"], scaling_factor=1.0 / std)}, run.dir / "vae.pt")
    run.mark_done(summary)
    print(f"{name}: done {summary}", flush=True)


if __name__ == "__main__":
    main()
