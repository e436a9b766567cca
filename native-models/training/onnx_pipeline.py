"""A small numpy + onnxruntime Stable Diffusion pipeline over an exported folder (the optimum
layout). It mirrors the torch pipelines' maths (docs/sd-onnx-reference.md §3.1, §3.5b, §3.6b) and is
used by the evaluation, the sample grid and the speed measurement, so they measure what ships.

Pictures go in and come out at the trained resolution (64×64): when the export doubles pixels
(export.pixel_repeat, see export_onnx.py) this class repeats pixels before the VAE encoder and takes
every r-th pixel of the decoder's output, both exact."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import diffusers
from transformers import CLIPTokenizer


class OnnxLdm:
    def __init__(self, folder: Path, threads: int = 1):
        self.folder = Path(folder)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1

        def session(name: str) -> ort.InferenceSession | None:
            path = self.folder / name / "model.onnx"
            return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]) if path.exists() else None

        self.text_encoder = session("text_encoder")
        self.unet = session("unet")
        self.vae_encoder = session("vae_encoder")
        self.vae_decoder = session("vae_decoder")
        self.tokenizer = CLIPTokenizer.from_pretrained(str(self.folder / "tokenizer"))
        vae_config = json.loads((self.folder / "vae_decoder" / "config.json").read_text())
        self.scaling_factor = float(vae_config["scaling_factor"])
        self.pixel_repeat = int(vae_config.get("_latent_studio_export", {}).get("pixel_repeat", 1))
        unet_config = json.loads((self.folder / "unet" / "config.json").read_text())
        self.unet_in_channels = int(unet_config["in_channels"])
        self.latent_channels = int(vae_config["latent_channels"])
        self.latent_size = int(unet_config["sample_size"])
        # The folder's own sampler class, so what is measured is what ships.
        scheduler_json = json.loads((self.folder / "scheduler" / "scheduler_config.json").read_text())
        self.scheduler_class = getattr(diffusers, scheduler_json["_class_name"])
        self.scheduler_config = self.scheduler_class.load_config(str(self.folder / "scheduler"))
        # Feed what the graphs declare (int32 or int64 ids; a scalar or a [1] timestep), as the engine does.
        ids_input = next(i for i in self.text_encoder.get_inputs() if i.name == "input_ids")
        self.ids_dtype = np.int32 if ids_input.type == "tensor(int32)" else np.int64
        timestep_input = next(i for i in self.unet.get_inputs() if i.name == "timestep")
        self.timestep_shape: tuple[int, ...] = () if len(timestep_input.shape) == 0 else (1,)
        label_input = next((i for i in self.unet.get_inputs() if i.name == "label_map"), None)
        self.label_channels = int(label_input.shape[1]) if label_input is not None else 0
        # A latent consistency U-Net (LCM) takes the guidance scale as an embedding (`timestep_cond`).
        cond_input = next((i for i in self.unet.get_inputs() if i.name == "timestep_cond"), None)
        self.timestep_cond_dim = int(unet_config.get("time_cond_proj_dim") or cond_input.shape[1]) if cond_input is not None else 0

    def new_scheduler(self, steps: int) -> diffusers.SchedulerMixin:
        scheduler = self.scheduler_class.from_config(self.scheduler_config)
        scheduler.set_timesteps(steps)
        return scheduler

    def encode_text(self, prompts: list[str]) -> np.ndarray:
        ids = self.tokenizer(prompts, padding="max_length", max_length=self.tokenizer.model_max_length,
                             truncation=True, return_tensors="np").input_ids.astype(self.ids_dtype)
        return self.text_encoder.run(["last_hidden_state"], {"input_ids": ids})[0]

    @property
    def is_lcm(self) -> bool:
        return self.timestep_cond_dim > 0

    def guidance_embedding(self, guidance: float, n: int) -> np.ndarray:
        """diffusers' get_guidance_scale_embedding(guidance − 1) (LatentConsistencyModelPipeline)."""
        w = (guidance - 1.0) * 1000.0
        half = self.timestep_cond_dim // 2
        freqs = np.exp(np.arange(half, dtype=np.float32) * -(np.log(10000.0) / (half - 1)))
        emb = np.concatenate([np.sin(w * freqs), np.cos(w * freqs)]).astype(np.float32)
        if self.timestep_cond_dim % 2:
            emb = np.pad(emb, (0, 1))
        return np.repeat(emb[None], n, axis=0)

    def run_unet(self, sample: np.ndarray, t: float, hidden: np.ndarray, label_map: np.ndarray | None = None,
                 timestep_cond: np.ndarray | None = None) -> np.ndarray:
        feeds = {"sample": sample.astype(np.float32), "timestep": np.full(self.timestep_shape, t, dtype=np.float32),
                 "encoder_hidden_states": hidden}
        if label_map is not None:
            feeds["label_map"] = label_map.astype(np.float32)
        if timestep_cond is not None:
            feeds["timestep_cond"] = timestep_cond
        return self.unet.run(["out_sample"], feeds)[0]

    def encode_image(self, images: np.ndarray) -> np.ndarray:
        """[-1, 1] NCHW images → scaled latents from the posterior mean (deterministic)."""
        r = self.pixel_repeat
        images = images.repeat(r, axis=2).repeat(r, axis=3) if r > 1 else images
        params = self.vae_encoder.run(["latent_parameters"], {"sample": images.astype(np.float32)})[0]
        return params[:, : self.latent_channels] * self.scaling_factor

    def decode(self, latents: np.ndarray) -> np.ndarray:
        """Scaled latents → uint8 NHWC, decoded one image at a time as the ONNX pipelines do."""
        out = [self.vae_decoder.run(["sample"], {"latent_sample": (latent[None] / self.scaling_factor).astype(np.float32)})[0]
               for latent in latents]
        r = self.pixel_repeat
        image = np.clip(np.concatenate(out)[:, :, ::r, ::r] / 2 + 0.5, 0, 1)
        return (image.transpose(0, 2, 3, 1) * 255).round().astype(np.uint8)

    def initial_noise(self, n: int, seeds: list[int]) -> np.ndarray:
        shape = (self.latent_channels, self.latent_size, self.latent_size)
        return np.stack([np.random.RandomState(s).standard_normal(shape) for s in seeds[:n]]).astype(np.float32)

    def denoise(self, prompts: list[str], steps: int, guidance: float, seeds: list[int], extra=None, blend=None,
                label_map: np.ndarray | None = None) -> np.ndarray:
        """The sampling loop. `extra` (mask, masked-image latents) makes a 9-channel input; `blend`
        (image latents, mask, noise) applies the 4-channel latent-blend inpainting of §3.6b; `label_map`
        [N, K, h, w] feeds a layout U-Net (the same map in both CFG halves)."""
        if (label_map is not None) != (self.label_channels > 0):
            raise ValueError(f"{self.folder}: a layout U-Net needs a label map and other U-Nets take none")
        if self.is_lcm:
            if blend is not None:
                raise ValueError(f"{self.folder}: latent-blend inpainting is not implemented for LCM folders")
            return self.denoise_lcm(prompts, steps, guidance, seeds, extra)
        if label_map is not None and guidance > 1.0:
            label_map = np.concatenate([label_map, label_map])
        scheduler = self.new_scheduler(steps)
        cond = self.encode_text(prompts)
        use_cfg = guidance > 1.0
        hidden = np.concatenate([self.encode_text([""] * len(prompts)), cond]) if use_cfg else cond
        latents = torch.from_numpy(self.initial_noise(len(prompts), seeds)) * scheduler.init_noise_sigma
        timesteps = scheduler.timesteps
        for i, t in enumerate(timesteps):
            model_in = torch.cat([latents, latents]) if use_cfg else latents
            model_in = scheduler.scale_model_input(model_in, t).numpy()
            if extra is not None:
                mask, masked_latents = extra
                if use_cfg:
                    mask, masked_latents = np.concatenate([mask, mask]), np.concatenate([masked_latents, masked_latents])
                model_in = np.concatenate([model_in, mask, masked_latents], axis=1)
            noise_pred = self.run_unet(model_in, float(t), hidden, label_map)
            if use_cfg:
                uncond, text = np.split(noise_pred, 2)
                noise_pred = uncond + guidance * (text - uncond)
            latents = scheduler.step(torch.from_numpy(noise_pred), t, latents).prev_sample
            if blend is not None:
                image_latents, mask, noise = blend
                proper = torch.from_numpy(image_latents)
                if i < len(timesteps) - 1:
                    proper = scheduler.add_noise(proper, torch.from_numpy(noise), timesteps[i + 1: i + 2])
                latents = (1 - torch.from_numpy(mask)) * proper + torch.from_numpy(mask) * latents
        return latents.numpy()

    def denoise_lcm(self, prompts: list[str], steps: int, guidance: float, seeds: list[int], extra=None) -> np.ndarray:
        """LatentConsistencyModelPipeline's loop (reference §4): no CFG batch, the guidance scale embedded
        as timestep_cond (ω = guidance − 1); LCMScheduler re-noises between steps with per-image
        generators seeded from the seeds; the result is the last step's `denoised`."""
        scheduler = self.new_scheduler(steps)
        hidden = self.encode_text(prompts)
        n = len(prompts)
        cond = self.guidance_embedding(guidance, n)
        latents = torch.from_numpy(self.initial_noise(n, seeds)) * scheduler.init_noise_sigma
        generators = [torch.Generator().manual_seed(s + 1_000_003) for s in seeds[:n]]
        denoised = latents
        for t in scheduler.timesteps:
            model_in = latents.numpy()
            if extra is not None:
                mask, masked_latents = extra
                model_in = np.concatenate([model_in, mask, masked_latents], axis=1)
            noise_pred = self.run_unet(model_in, float(t), hidden, timestep_cond=cond)
            out = scheduler.step(torch.from_numpy(noise_pred), t, latents, generator=generators)
            latents, denoised = out.prev_sample, out.denoised
        return denoised.numpy()

    def text_to_image(self, prompts: list[str], steps: int, guidance: float, seeds: list[int]) -> np.ndarray:
        return self.decode(self.denoise(prompts, steps, guidance, seeds))

    def layout_to_image(self, prompts: list[str], label_maps: np.ndarray, steps: int, guidance: float,
                        seeds: list[int]) -> np.ndarray:
        """Layout generation: label_maps float32 [N, K, h, w] at latent resolution (training/labels.py)."""
        return self.decode(self.denoise(prompts, steps, guidance, seeds, label_map=label_maps))

    def latent_mask(self, masks: np.ndarray) -> np.ndarray:
        # torch pipeline: F.interpolate(mask, size=(H//f, W//f)) ('nearest' → source pixel floor(i·f)).
        f = masks.shape[-1] // self.latent_size
        return np.ascontiguousarray(masks[:, None, ::f, ::f]).astype(np.float32)

    def inpaint(self, images_u8: np.ndarray, masks: np.ndarray, prompts: list[str], steps: int, guidance: float,
                seeds: list[int]) -> np.ndarray:
        """9-channel inpainting (§3.5b). masks: [N, H, W] in {0, 1}, 1 = repaint."""
        images = images_u8.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1
        masked = images * (masks[:, None] < 0.5)
        extra = (self.latent_mask(masks), self.encode_image(masked))
        return self.decode(self.denoise(prompts, steps, guidance, seeds, extra=extra))

    def blend_inpaint(self, images_u8: np.ndarray, masks: np.ndarray, prompts: list[str], steps: int, guidance: float,
                      seeds: list[int]) -> np.ndarray:
        """4-channel latent-blend inpainting with the text-to-image U-Net (§3.6b)."""
        images = images_u8.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1
        image_latents = self.encode_image(images)
        noise = self.initial_noise(len(prompts), [s + 7_919 for s in seeds])
        blend = (image_latents, np.repeat(self.latent_mask(masks), self.latent_channels, axis=1), noise)
        return self.decode(self.denoise(prompts, steps, guidance, seeds, blend=blend))
