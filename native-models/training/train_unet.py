"""Stages 3–5: train the text encoder + U-Net (text-to-image), then the 9-channel inpainting U-Net and
the layout U-Net.

  python -m training.train_unet --stage text2img   # CLIPTextModel + UNet2DConditionModel (4 in-channels)
  python -m training.train_unet --stage inpaint    # UNet with [latents 4 | mask 1 | masked-image latents 4],
                                                   # initialised from the text-to-image U-Net (extra input
                                                   # channels zeroed), text encoder frozen and shared
  python -m training.train_unet --stage layout     # UNet with [latents 4 | label map K] (training/labels.py:
                                                   # the picture's own colour labels, one-hot, area-pooled to
                                                   # latent size), initialised and frozen like inpaint

Recipe (as Stable Diffusion): DDPM forward process with SD's betas (scaled_linear 0.00085 → 0.012,
1000 steps), epsilon prediction, MSE loss weighted by min-SNR-γ (Hang et al. 2023, γ = 5), captions
dropped to "" with probability p so classifier-free guidance works, EMA weights exported. Latents are
VAE posterior samples × scaling_factor (from the VAE stage). Resumes from <work>/runs/<stage>/state.pt.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

from .build_tokenizer import TOKENIZER_DIR
from .common import EMA, RunState, atomic_save, load_images, resume, rng_state, seed_everything, to_model_range, train_loop
from .config import Config, add_common_args, load_config
from .labels import NUM_LABELS, label_maps, labels_json
from .masks import random_mask
from .models import build_text_encoder, build_unet, build_vae, count_parameters, limit_threads, vae_downscale

STAGE_DIRS = {"text2img": "unet", "inpaint": "inpaint", "layout": "layout"}
STAGE_CONFIGS = {"text2img": "train_unet", "inpaint": "train_inpaint", "layout": "train_layout"}
# Seed offsets so the stages draw different noise and batches from the same config seed.
STAGE_SEED_OFFSETS = {"text2img": 0, "inpaint": 1, "layout": 2}


def make_noise_scheduler(cfg: Config) -> DDPMScheduler:
    s = cfg["noise_schedule"]
    return DDPMScheduler(num_train_timesteps=s["num_train_timesteps"], beta_start=s["beta_start"], beta_end=s["beta_end"],
                         beta_schedule=s["beta_schedule"], prediction_type=s["prediction_type"], clip_sample=False)


def load_tokenizer(cfg: Config) -> CLIPTokenizer:
    return CLIPTokenizer.from_pretrained(str(TOKENIZER_DIR / cfg.name))


def load_trained_vae(cfg: Config) -> tuple[AutoencoderKL, float, str]:
    path = cfg.runs_dir / "vae" / "vae.pt"
    if not path.exists():
        raise SystemExit(f"the VAE stage has not finished: {path} is missing (run python -m training.train_vae)")
    saved = torch.load(path, map_location="cpu", weights_only=False)
    vae = build_vae(saved["config"])
    vae.load_state_dict(saved["model"])
    vae.eval().requires_grad_(False)
    return vae, float(saved["config"]["scaling_factor"]), weights_digest(saved["model"])


def weights_digest(state: dict[str, torch.Tensor]) -> str:
    """Identifies the latent space by the VAE encoder's weights (not file bytes, so a VAE restored from a
    checkpoint matches; not the decoder, which can be fine-tuned later without invalidating the U-Net)."""
    digest = hashlib.sha256()
    for key in sorted(k for k in state if k.startswith(("encoder.", "quant_conv."))):
        digest.update(key.encode())
        digest.update(state[key].float().numpy().tobytes())
    return digest.hexdigest()[:16]


@torch.no_grad()
def posterior_parameters(cfg: Config, vae: AutoencoderKL, vae_digest: str, images: torch.Tensor) -> torch.Tensor:
    """[N, 2·C, h, w] posterior mean ‖ logvar of every image, cached per VAE version."""
    cache = cfg.runs_dir / f"latents-{vae_digest}.pt"
    if cache.exists():
        return torch.load(cache)
    device = next(vae.parameters()).device
    params = torch.cat([vae.encode(images[s:s + 64].to(device)).latent_dist.parameters.cpu() for s in range(0, len(images), 64)])
    atomic_save(params, cache)
    return params


def sample_latents(params: torch.Tensor, scaling_factor: float, generator: torch.Generator) -> torch.Tensor:
    mean, logvar = params.chunk(2, dim=1)
    std = torch.exp(0.5 * logvar.clamp(-30, 20))
    return (mean + std * torch.randn(mean.shape, generator=generator)) * scaling_factor


def sample_caption(parts: dict, rng: np.random.Generator, caption_cfg: dict) -> str:
    if rng.random() < caption_cfg["drop_probability"]:
        return ""
    pieces = [parts["name"], *parts["skin"]]
    if parts["short_names"] and rng.random() < caption_cfg["short_name_probability"]:
        pieces.append(parts["short_names"][int(rng.integers(len(parts["short_names"])))])
    if rng.random() < caption_cfg["category_probability"]:
        pieces.append(parts["category"])
    if rng.random() < caption_cfg["subcategory_probability"]:
        pieces.append(parts["subcategory"])
    return ", ".join(pieces)


def trained_token_ids(cfg: Config) -> list[int]:
    """Every token id a caption of the dataset can contain (sample_caption joins an ordered subset of a
    record's pieces with ", "; a pre-token never spans two pieces' words, so each piece and each ordered
    pair of pieces covers every boundary), plus the specials. Rows of the token embedding outside this set
    never get a gradient: they stay at their random initial values. Held-out records count too (a few
    rows more than training reaches), so a held-out caption meets exactly the model that was trained."""
    tokenizer = load_tokenizer(cfg)
    records = json.loads((cfg.data_dir / "records.json").read_text())
    texts: set[str] = set()
    for record in records:
        parts = record["parts"]
        pieces = [parts["name"], *parts["skin"], *parts["short_names"], parts["category"], parts["subcategory"]]
        texts.update(pieces)
        texts.add(record["caption"])
        texts.update(f"{a}, {b}" for i, a in enumerate(pieces) for b in pieces[i + 1:])
    ids = {tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id}
    for text in texts:
        ids.update(tokenizer(text).input_ids)
    return sorted(ids)


class TokenCache:
    def __init__(self, tokenizer: CLIPTokenizer):
        self.tokenizer = tokenizer
        self.cache: dict[str, list[int]] = {}

    def __call__(self, captions: list[str]) -> torch.Tensor:
        for caption in captions:
            if caption not in self.cache:
                self.cache[caption] = self.tokenizer(caption, padding="max_length", max_length=self.tokenizer.model_max_length,
                                                     truncation=True).input_ids
        return torch.tensor([self.cache[c] for c in captions], dtype=torch.long)


@dataclass
class LatentData:
    """The dataset as the U-Net stages see it: the images, their records (captions, split), the trained
    VAE and every image's posterior under it (cached per VAE version), and the tokenizer."""
    images_u8: np.ndarray
    records: list[dict]
    train_idx: np.ndarray
    heldout_idx: np.ndarray
    images: torch.Tensor
    vae: AutoencoderKL
    scaling_factor: float
    vae_digest: str
    params: torch.Tensor
    tokens: TokenCache

    @property
    def latent_size(self) -> int:
        return self.params.shape[-1]

    def latents_and_noise(self, pick: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """A latent sample of each picked image's posterior and the noise to add to it."""
        latents = sample_latents(self.params[pick], self.scaling_factor, generator)
        return latents, torch.randn(latents.shape, generator=generator)

    def train_batch(self, batch_size: int, generator: torch.Generator, rng: np.random.Generator,
                    caption_cfg: dict) -> tuple[torch.Tensor, list[str], torch.Tensor, torch.Tensor]:
        """(pick, captions, latents, noise) of a batch of training images, each with a sampled caption."""
        pick = torch.from_numpy(self.train_idx)[torch.randint(0, len(self.train_idx), (batch_size,), generator=generator)]
        captions = [sample_caption(self.records[i]["parts"], rng, caption_cfg) for i in pick.tolist()]
        return pick, captions, *self.latents_and_noise(pick, generator)

    def validation_batch(self, count: int, seed: int) -> tuple[torch.Generator, np.random.Generator, torch.Tensor, list[str], torch.Tensor, torch.Tensor]:
        """A fixed held-out batch (the same every run, so the logged validation loss is comparable over
        time): the generators it was drawn from (for the stage's own draws), pick, captions, latents, noise."""
        generator = torch.Generator().manual_seed(seed)
        rng = np.random.default_rng(seed)
        pick = torch.from_numpy(self.heldout_idx[:count])
        captions = [self.records[i]["caption"] for i in pick.tolist()]
        return generator, rng, pick, captions, *self.latents_and_noise(pick, generator)


def load_latent_data(cfg: Config, device: torch.device | None = None) -> LatentData:
    """The dataset and the trained VAE (moved to `device` before the posteriors are computed)."""
    images_u8, records = load_images(cfg.data_dir)
    train_idx = np.array([r["index"] for r in records if r["split"] == "train"])
    heldout_idx = np.array([r["index"] for r in records if r["split"] == "heldout"]) if any(
        r["split"] == "heldout" for r in records) else train_idx[:8]
    images = to_model_range(images_u8)
    vae, scaling_factor, vae_digest = load_trained_vae(cfg)
    if device is not None:
        vae.to(device)
    params = posterior_parameters(cfg, vae, vae_digest, images)
    return LatentData(images_u8, records, train_idx, heldout_idx, images, vae, scaling_factor, vae_digest, params,
                      TokenCache(load_tokenizer(cfg)))


def load_text2img(cfg: Config, allow_snapshot: bool) -> tuple[UNet2DConditionModel, CLIPTextModel, dict]:
    """The text-to-image stage's EMA weights: from unet.pt when the stage is finished, else (if allowed)
    from the running stage's state.pt (a snapshot, so the inpainting stage and exports can go ahead)."""
    stage = cfg.runs_dir / "unet"
    if (stage / "unet.pt").exists():
        saved = torch.load(stage / "unet.pt", map_location="cpu", weights_only=False)
        unet_state, te_state, info = saved["unet"], saved["text_encoder"], {"step": saved["steps"], "snapshot": False}
    elif allow_snapshot and (stage / "state.pt").exists():
        saved = torch.load(stage / "state.pt", map_location="cpu", weights_only=False)
        unet_state, te_state = saved["unet_ema"]["shadow"], saved["te_ema"]["shadow"]
        info = {"step": saved["step"], "snapshot": True}
    else:
        raise SystemExit(f"the text-to-image stage has not finished: {stage / 'unet.pt'} is missing "
                         "(finish it, or pass --allow-snapshot to use its latest checkpoint)")
    latent_channels = cfg["vae"]["latent_channels"]
    te_cfg = cfg["text_encoder"]
    vocab = load_tokenizer(cfg).get_vocab()
    text_encoder = build_text_encoder(te_cfg, len(vocab), vocab["<|startoftext|>"], vocab["<|endoftext|>"], vocab["<|endoftext|>"])
    text_encoder.load_state_dict(te_state)
    latent_size = cfg["data"]["image_size"] // vae_downscale(cfg["vae"])
    unet = build_unet(cfg["unet"], latent_channels, latent_size, te_cfg["hidden_size"])
    unet.load_state_dict(unet_state)
    return unet.eval(), text_encoder.eval(), info


def load_derived_stage(stage_dir: Path) -> tuple[UNet2DConditionModel, dict, dict] | None:
    """EMA weights of an inpaint / layout U-Net and its frozen text encoder's weights: unet.pt when the
    stage is finished, else the running stage's state.pt; None when the stage has not started."""
    path = stage_dir / "unet.pt"
    if not path.exists():
        path = stage_dir / "state.pt"
    if not path.exists():
        return None
    saved = torch.load(path, map_location="cpu", weights_only=False)
    if path.name == "unet.pt":
        state, info = saved["unet"], {"step": saved["steps"], "snapshot": False, "text2img_source": saved.get("text2img_source")}
    else:
        state, info = saved["unet_ema"]["shadow"], {"step": saved["step"], "snapshot": True,
                                                    "text2img_source": saved.get("text2img_source")}
    unet = UNet2DConditionModel.from_config(saved["unet_config"])
    unet.load_state_dict(state)
    return unet.eval(), info, saved["text_encoder"]


def inpaint_unet_from(text_unet: UNet2DConditionModel, in_channels: int) -> UNet2DConditionModel:
    """Copies a text-to-image U-Net into one with more input channels; the new channels start at zero
    (as SD's inpainting checkpoints were initialised from the text-to-image weights), so at step 0 the
    widened U-Net computes exactly what the text-to-image one does. Used by the inpaint and layout stages."""
    config = dict(text_unet.config)
    config["in_channels"] = in_channels
    unet = UNet2DConditionModel.from_config(config)
    state = text_unet.state_dict()
    old_weight = state["conv_in.weight"]
    new_weight = torch.zeros(old_weight.shape[0], in_channels, *old_weight.shape[2:])
    new_weight[:, :old_weight.shape[1]] = old_weight
    state["conv_in.weight"] = new_weight
    unet.load_state_dict(state)
    return unet


def mask_batch(n: int, size: int, rng: np.random.Generator, probabilities: dict) -> torch.Tensor:
    return torch.from_numpy(np.stack([random_mask(size, rng, probabilities) for _ in range(n)]))[:, None]


def latent_mask(mask: torch.Tensor, latent_size: int) -> torch.Tensor:
    # torch inpaint pipeline: F.interpolate(mask, size=(H//f, W//f)) with the default 'nearest' mode.
    return F.interpolate(mask, size=(latent_size, latent_size))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_args(parser)
    parser.add_argument("--stage", choices=sorted(STAGE_DIRS), required=True)
    parser.add_argument("--max-minutes", type=float, default=None, help="stop (with a checkpoint) after this long")
    parser.add_argument("--finalize", action="store_true", help="end training at the checkpoint's step and write the weights")
    parser.add_argument("--allow-snapshot", action="store_true",
                        help="inpaint / layout: start from the text-to-image stage's latest checkpoint if it has not finished")
    args = parser.parse_args()
    cfg = load_config(args)
    inpaint = args.stage == "inpaint"
    layout = args.stage == "layout"
    frozen_text = args.stage != "text2img"  # the derived stages keep the text-to-image text encoder as it is
    train_cfg = cfg[STAGE_CONFIGS[args.stage]]
    limit_threads(train_cfg.get("threads", 1))
    run = RunState(cfg.stage_dir(STAGE_DIRS[args.stage]), train_cfg["save_every_minutes"], args.max_minutes)
    if run.done:
        print(f"{args.stage}: already done", flush=True)
        return

    generator = seed_everything(cfg["seed"] + STAGE_SEED_OFFSETS[args.stage])
    source_info = None
    rng = np.random.default_rng(cfg["seed"])
    data = load_latent_data(cfg)
    images, vae, scaling_factor, vae_digest = data.images, data.vae, data.scaling_factor, data.vae_digest
    latent_size = data.latent_size
    latent_channels = data.params.shape[1] // 2
    tokens = data.tokens
    vocab = tokens.tokenizer.get_vocab()
    noise_scheduler = make_noise_scheduler(cfg)
    alphas_cumprod = noise_scheduler.alphas_cumprod

    # Layout conditioning: every image's own label map at latent resolution, [N, K, h, w] (training/labels.py).
    maps = torch.from_numpy(label_maps(data.images_u8, images.shape[-1] // latent_size)) if layout else None
    state = run.load()
    if frozen_text:
        # On resume the weights (U-Net and the frozen text encoder) come from state.pt below; the
        # text-to-image stage only supplies the architecture then, so it may have moved on meanwhile.
        text_unet, text_encoder, source_info = load_text2img(cfg, args.allow_snapshot or state is not None)
        if state is not None and state.get("text2img_source") is not None:
            source_info = state["text2img_source"]
        else:
            print(f"{args.stage}: initialised from the text-to-image stage at step {source_info['step']}"
                  f"{' (snapshot)' if source_info['snapshot'] else ''}", flush=True)
        extra_channels = latent_channels + 1 if inpaint else NUM_LABELS
        unet = inpaint_unet_from(text_unet, latent_channels + extra_channels)
        del text_unet
        text_encoder.requires_grad_(False).eval()
        trainable = list(unet.parameters())
    else:
        te_cfg = cfg["text_encoder"]
        text_encoder = build_text_encoder(te_cfg, len(vocab), vocab["<|startoftext|>"], vocab["<|endoftext|>"],
                                          vocab[tokens.tokenizer.pad_token])
        unet = build_unet(cfg["unet"], latent_channels, latent_size, te_cfg["hidden_size"])
        trainable = list(unet.parameters()) + list(text_encoder.parameters())
    optimizer = torch.optim.AdamW(trainable, lr=train_cfg["lr"], weight_decay=train_cfg["weight_decay"])
    unet_ema = EMA(unet, train_cfg["ema_decay"])
    te_ema = EMA(text_encoder, train_cfg["ema_decay"])
    step = 0
    restart_step = 0
    if state:
        if state.get("vae_digest") not in (None, vae_digest):
            raise SystemExit(f"{run.state_path} was trained on another VAE latent space ({state['vae_digest']} ≠ {vae_digest}); "
                             "delete it to start this stage again")
        unet.load_state_dict(state["unet"])
        text_encoder.load_state_dict(state["text_encoder"])
        unet_ema.load_state_dict(state["unet_ema"])
        te_ema.load_state_dict(state["te_ema"])
        step, restart_step, generator, rng = resume(state, optimizer, generator, rng, cfg["seed"], args.stage)
    print(f"{args.stage}: U-Net {count_parameters(unet) / 1e6:.2f}M, text encoder {count_parameters(text_encoder) / 1e6:.2f}M "
          f"parameters; latents {latent_channels}×{latent_size}×{latent_size}, scaling factor {scaling_factor:.4f}", flush=True)

    def checkpoint(step: int) -> None:
        run.save({"unet": unet.state_dict(), "text_encoder": text_encoder.state_dict(), "optimizer": optimizer.state_dict(),
                  "unet_ema": unet_ema.state_dict(), "te_ema": te_ema.state_dict(), "rng": rng_state(generator),
                  "np_rng": rng.bit_generator.state, "step": step, "vae_digest": vae_digest,
                  "unet_config": dict(unet.config), "text2img_source": source_info,
                  "labels": labels_json() if layout else None})

    def model_input(noisy: torch.Tensor, pick: torch.Tensor, batch_rng: np.random.Generator) -> torch.Tensor:
        if layout:
            return torch.cat([noisy, maps[pick]], dim=1)
        if not inpaint:
            return noisy
        mask = mask_batch(len(pick), images.shape[-1], batch_rng, train_cfg["mask_probabilities"])
        masked = images[pick] * (mask < 0.5)
        with torch.no_grad():
            masked_latents = vae.encode(masked).latent_dist.sample() * scaling_factor
        return torch.cat([noisy, latent_mask(mask, latent_size), masked_latents], dim=1)

    # A fixed held-out batch (noise, timesteps, masks) so the logged validation loss is comparable over time.
    val_gen, val_rng, val_pick, val_captions, val_latents, val_noise = data.validation_batch(train_cfg["val_images"], cfg["seed"] + 99)
    val_t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (len(val_pick),), generator=val_gen)
    val_ids = tokens(val_captions)
    val_extra = model_input(noise_scheduler.add_noise(val_latents, val_noise, val_t), val_pick, val_rng)

    @torch.no_grad()
    def validation_loss() -> float:
        unet.eval()
        text_encoder.eval()
        hidden = text_encoder(val_ids).last_hidden_state
        pred = unet(val_extra, val_t, hidden).sample
        unet.train()
        if not frozen_text:
            text_encoder.train()
        return float((pred - val_noise).pow(2).mean())

    total = step if args.finalize else train_cfg["steps"]
    gamma = train_cfg["min_snr_gamma"]
    unet.train()
    if not frozen_text:
        text_encoder.train()

    def batch_loss() -> tuple[torch.Tensor, dict]:
        pick, captions, latents, noise = data.train_batch(train_cfg["batch_size"], generator, rng, train_cfg["captions"])
        timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (len(pick),), generator=generator)
        noisy = noise_scheduler.add_noise(latents, noise, timesteps)
        hidden = text_encoder(tokens(captions)).last_hidden_state
        pred = unet(model_input(noisy, pick, rng), timesteps, hidden).sample
        snr = alphas_cumprod[timesteps] / (1 - alphas_cumprod[timesteps])
        weight = snr.clamp(max=gamma) / snr  # min-SNR-γ for epsilon prediction
        return (weight * (pred - noise).pow(2).flatten(1).mean(1)).mean(), {}

    def after_step(step: int) -> None:
        unet_ema.update(unet, step)
        if not frozen_text:
            te_ema.update(text_encoder, step)

    step = train_loop(run, args.stage, train_cfg, optimizer, trainable, step=step, total=total,
                      lr_at=lambda s: train_cfg["lr"] * min(1.0, (s - restart_step + 1) / train_cfg["warmup_steps"]),
                      batch_loss=batch_loss, after_step=after_step, validate=validation_loss, val_key="val_mse", checkpoint=checkpoint)
    if step < total:
        print(f"{args.stage}: stopped at step {step}/{total}; rerun the same command to resume", flush=True)
        return
    atomic_save({"unet": unet_ema.shadow, "unet_config": dict(unet.config),
                 "text_encoder": te_ema.shadow if not frozen_text else text_encoder.state_dict(),
                 "text_encoder_config": text_encoder.config.to_dict(), "scaling_factor": scaling_factor,
                 "vae_digest": vae_digest, "steps": step, "text2img_source": source_info,
                 "labels": labels_json() if layout else None}, run.dir / "unet.pt")
    unet.load_state_dict(unet_ema.shadow)
    if not frozen_text:
        text_encoder.load_state_dict(te_ema.shadow)
    summary = {"steps": step, "val_mse_ema": validation_loss()}
    run.mark_done(summary)
    print(f"{args.stage}: done {json.dumps(summary)}", flush=True)


if __name__ == "__main__":
    main()
