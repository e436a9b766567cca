"""Stage 6: export the trained networks to the diffusers ONNX folder layout that optimum writes
(docs/sd-onnx-reference.md §1.2, §2.2), in a form that diffusers' legacy OnnxStableDiffusion*Pipeline
classes run as well (§2.1, §3.1), and check every submodel against torch with onnxruntime.

  <export_root>/emoji-ldm/          text-to-image (4-channel U-Net)
  <export_root>/emoji-ldm-inpaint/  inpainting (9-channel U-Net); text encoder, VAE, tokenizer and
                                    scheduler are byte-identical copies of the ones above
  <export_root>/emoji-ldm-layout/   layout (U-Net with an extra input label_map [batch, K, h, w] that the
                                    graph concatenates to sample; labels.json names the K labels);
                                    the other parts are copies as for inpainting

Submodel I/O: text_encoder input_ids int32 [batch, sequence] → last_hidden_state, pooler_output;
unet sample [batch, C, h, w] (C static), timestep float32 [1] (or [batch]), encoder_hidden_states
(+ label_map for layout) → out_sample; vae_encoder sample → latent_sample (the posterior mean, 4
channels, first) and latent_parameters (mean ‖ logvar); vae_decoder latent_sample → sample.

What diffusers' ONNX pipelines need, and how the export gives it (each also runs in the engine, which
reads input types and ranks from the graph):
- they feed input_ids as int32 (`astype(np.int32)`) → the text encoder declares int32;
- they feed the timestep as `np.array([t])`, shape [1] → the U-Net declares a rank-1 timestep;
- they take the VAE encoder's first output as 4-channel latents → `latent_sample` (posterior mean) comes
  first; `latent_parameters` stays for the engine, which samples from it with the job's seed;
- they hard-code the latent scaling factor 0.18215 and a VAE factor of 8. The trained VAE has its own
  scaling factor s (fitted to unit variance) and a factor of 4 at 64×64. So the graphs fold s/0.18215
  into the encoder output and the decoder input, and config.json says 0.18215 (the U-Net sees exactly
  the latents it was trained on, through either door); and with export.pixel_repeat = 2 the encoder
  graph starts with a 2×2 average pool and the decoder graph ends with a 2× nearest upscale, so the
  exported model is a 128×128 ↔ 16×16 model (factor 8) whose pictures are the 64×64 ones with every
  pixel doubled (exact both ways: pooling a doubled picture gives the original back).
Weight storage (export.weights; --weights overrides): "fp16" (default) stores every large float32
initializer as fp16 followed by a Cast to float32, so files are half size while every graph input,
output and op stays float32 (onnxruntime folds the Casts when it loads the model); "int8" stores
matrices and convolution kernels as int8 with one float32 scale per output channel (symmetric, ±127),
followed by Cast + Mul, a quarter of the size, also folded at load; "fp32" stores them as trained.
The torch weights are rounded the same way before export, so the onnxruntime-vs-torch check measures
the export, not the rounding (the rounding's effect is measured by comparing exports).
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn.functional as F
import diffusers
from diffusers import AutoencoderKL, UNet2DConditionModel
from onnx import helper, numpy_helper
from transformers import CLIPTextModel

from .build_tokenizer import TOKENIZER_DIR
from .config import Config, add_common_args, lcm_stage_value, load_config
from .labels import NUM_LABELS, write_labels_json
from .models import build_vae, limit_threads
from .train_unet import load_derived_stage, load_text2img, trained_token_ids

OPSET = 17
# Initializers smaller than this stay float32 in every storage mode (biases and norms: tiny, and exact
# matters more there).
COMPACT_MIN_ELEMENTS = 1024
DIFFUSERS_VERSION = "0.42.1"
# The latent scaling factor diffusers' ONNX pipelines hard-code (pipeline_onnx_stable_diffusion*.py).
DIFFUSERS_ONNX_SCALING_FACTOR = 0.18215
# ... and their VAE factor (latents are height // 8 × width // 8).
DIFFUSERS_ONNX_VAE_FACTOR = 8
SUBMODELS = ("text_encoder", "unet", "vae_encoder", "vae_decoder", "tokenizer", "scheduler")


WEIGHT_STORAGE = ("fp16", "int8", "fp32")
INT8_MAX = 127  # symmetric int8: q in [-127, 127], w ≈ q · scale


@dataclass(frozen=True)
class ExportSettings:
    weights: str  # "fp16" | "int8" | "fp32" (config export.weights)
    pixel_repeat: int  # exported pixels per trained pixel along each side (config export.pixel_repeat)
    latent_gain: float  # trained scaling factor / 0.18215, folded into the VAE graphs

    @staticmethod
    def from_config(cfg: Config, trained_scaling_factor: float, weights_override: str | None = None) -> "ExportSettings":
        export_cfg = cfg["export"]
        weights = weights_override or export_cfg.get("weights", "fp16")
        if weights not in WEIGHT_STORAGE:
            raise SystemExit(f"export.weights must be one of {', '.join(WEIGHT_STORAGE)}, not {weights!r}")
        return ExportSettings(weights=weights, pixel_repeat=int(export_cfg.get("pixel_repeat", 1)),
                              latent_gain=trained_scaling_factor / DIFFUSERS_ONNX_SCALING_FACTOR)


class CompactTokenEmbedding(torch.nn.Module):
    """The token embedding with the rows training never touched left out: those ids (pieces no caption
    produces, e.g. intermediate BPE merges) index one shared zero row through an int32 remap table."""

    def __init__(self, weight: torch.Tensor, trained_ids: list[int]):
        super().__init__()
        keep = torch.tensor(sorted(set(trained_ids)), dtype=torch.long)
        remap = torch.full((weight.shape[0],), len(keep), dtype=torch.int32)
        remap[keep] = torch.arange(len(keep), dtype=torch.int32)
        self.register_buffer("remap", remap)
        self.table = torch.nn.Parameter(torch.cat([weight[keep], weight.new_zeros(1, weight.shape[1])]), requires_grad=False)

    def forward(self, input_ids):
        return F.embedding(self.remap[input_ids], self.table)


def text_embeddings(model: CLIPTextModel) -> torch.nn.Module:
    """CLIPTextEmbeddings: under model.text_model in transformers 4, on the model itself in 5."""
    return getattr(model, "text_model", model).embeddings


class TextEncoderGraph(torch.nn.Module):
    """The text encoder as exported; with trained_ids, its token lookup is the CompactTokenEmbedding."""

    def __init__(self, model: CLIPTextModel, trained_ids: list[int] | None = None):
        super().__init__()
        self.model = model
        self.compact = None if trained_ids is None else \
            CompactTokenEmbedding(model.get_input_embeddings().weight.detach(), trained_ids)

    def forward(self, input_ids):
        embeddings = text_embeddings(self.model)
        original = embeddings.token_embedding
        if self.compact is not None:
            embeddings.token_embedding = self.compact  # CLIPTextEmbeddings calls self.token_embedding(input_ids)
        try:
            out = self.model(input_ids=input_ids, return_dict=True)
        finally:
            embeddings.token_embedding = original
        return out.last_hidden_state, out.pooler_output


class UNetGraph(torch.nn.Module):
    def __init__(self, unet: UNet2DConditionModel):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states):
        return self.unet(sample, timestep, encoder_hidden_states, return_dict=False)[0]


class LcmUNetGraph(torch.nn.Module):
    """A latent consistency U-Net as optimum exports one: the guidance embedding comes in as
    `timestep_cond` [batch, time_cond_proj_dim]."""

    def __init__(self, unet: UNet2DConditionModel):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states, timestep_cond):
        return self.unet(sample, timestep, encoder_hidden_states, timestep_cond=timestep_cond, return_dict=False)[0]


class LayoutUNetGraph(torch.nn.Module):
    """The layout U-Net as the engine sees it: the text-to-image inputs plus `label_map`, concatenated to
    `sample` inside the graph (conv_in takes latent + K channels)."""

    def __init__(self, unet: UNet2DConditionModel):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states, label_map):
        return self.unet(torch.cat([sample, label_map], dim=1), timestep, encoder_hidden_states, return_dict=False)[0]


class VaeEncoderGraph(torch.nn.Module):
    """Exported latents z' = g·z with g = s / 0.18215, so 0.18215·z' = s·z (the U-Net's latents); logvar
    shifts by 2·ln g (Var(g·z) = g²·Var(z)). With pixel_repeat r the picture is r×r average-pooled first."""

    def __init__(self, vae: AutoencoderKL, settings: ExportSettings):
        super().__init__()
        self.vae = vae
        self.gain = settings.latent_gain
        self.repeat = settings.pixel_repeat

    def forward(self, sample):
        if self.repeat > 1:
            sample = F.avg_pool2d(sample, self.repeat)
        mean, logvar = self.vae.encode(sample).latent_dist.parameters.chunk(2, dim=1)
        mean = mean * self.gain
        # latent_sample first (diffusers' pipelines read output 0 as the latents; the mean, deterministic);
        # latent_parameters as optimum ≥ 1.23 names it (mean ‖ logvar; the engine samples from it).
        return mean, torch.cat([mean, logvar + 2 * math.log(self.gain)], dim=1)


class VaeDecoderGraph(torch.nn.Module):
    """Takes z' = latents / 0.18215 = g·z, decodes z = z' / g; with pixel_repeat r it upscales r× (nearest)."""

    def __init__(self, vae: AutoencoderKL, settings: ExportSettings):
        super().__init__()
        self.vae = vae
        self.gain = settings.latent_gain
        self.repeat = settings.pixel_repeat

    def forward(self, latent_sample):
        image = self.vae.decode(latent_sample / self.gain).sample
        if self.repeat > 1:
            image = F.interpolate(image, scale_factor=float(self.repeat), mode="nearest")
        return image


def stored(tensor: torch.Tensor) -> bool:
    """Large float32 tensors get the compact storage (biases and norms are tiny; exact matters more there)."""
    return tensor.dtype == torch.float32 and tensor.numel() >= COMPACT_MIN_ELEMENTS


def round_weights(module: torch.nn.Module, settings: ExportSettings) -> None:
    """Rounds weights to what the export stores (fp16, or int8 per output channel = dim 0 of every torch
    weight: Conv [out, in, kh, kw], Linear [out, in], Embedding [rows, width]), so the exported graph
    computes exactly what torch checks."""
    with torch.no_grad():
        for tensor in module.state_dict().values():
            if not stored(tensor):
                continue
            if settings.weights == "fp16" or (settings.weights == "int8" and tensor.dim() < 2):
                tensor.copy_(tensor.half().float())
            elif settings.weights == "int8":
                rows = tensor.reshape(tensor.shape[0], -1)
                scale = rows.abs().amax(1, keepdim=True).clamp_min(1e-30) / INT8_MAX
                tensor.copy_(((rows / scale).round().clamp(-INT8_MAX, INT8_MAX) * scale).reshape(tensor.shape))


def int8_grid(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, int] | None:
    """(q, scale, axis) when `values` lies on a symmetric per-channel int8 grid along its first or last
    axis (torch's dim 0 ends up last where the exporter stores a Linear weight transposed for MatMul)."""
    for axis in (0, values.ndim - 1):
        moved = np.moveaxis(values, axis, 0).reshape(values.shape[axis], -1)
        scale = np.maximum(np.abs(moved).max(1), 1e-30) / INT8_MAX
        q = np.round(moved / scale[:, None])
        if np.abs(moved / scale[:, None] - q).max() < 1e-3:
            q_full = np.moveaxis(q.reshape(np.moveaxis(values, axis, 0).shape), 0, axis).astype(np.int8)
            shape = [1] * values.ndim
            shape[axis] = values.shape[axis]
            return q_full, scale.astype(np.float32).reshape(shape), axis
    return None


def store_weights(path: Path, mode: str) -> dict:
    """Rewrites the large float32 initializers: "fp16" → fp16 initializer + Cast; "int8" → int8
    initializer + Cast + Mul by a per-channel float32 scale (tensors of rank ≥ 2 that round_weights put
    on the grid; others fp16). Each chain ends in the initializer's original name, so the rest of the
    graph is untouched and computes in float32."""
    model = onnx.load(str(path))
    graph = model.graph
    prologue, kept = [], []
    counts = {"fp16": 0, "int8": 0}
    for init in graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT or int(np.prod(init.dims)) < COMPACT_MIN_ELEMENTS:
            kept.append(init)
            continue
        values = numpy_helper.to_array(init)
        grid = int8_grid(values) if mode == "int8" and values.ndim >= 2 else None
        if grid is not None:
            q, scale, _axis = grid
            kept += [numpy_helper.from_array(q, init.name + "_int8"), numpy_helper.from_array(scale, init.name + "_scale")]
            prologue += [helper.make_node("Cast", [init.name + "_int8"], [init.name + "_int8_as_fp32"], to=onnx.TensorProto.FLOAT,
                                          name=init.name + "_to_fp32"),
                         helper.make_node("Mul", [init.name + "_int8_as_fp32", init.name + "_scale"], [init.name],
                                          name=init.name + "_dequantize")]
            counts["int8"] += 1
        else:
            kept.append(numpy_helper.from_array(values.astype(np.float16), init.name + "_fp16"))
            prologue.append(helper.make_node("Cast", [init.name + "_fp16"], [init.name], to=onnx.TensorProto.FLOAT,
                                             name=init.name + "_to_fp32"))
            counts["fp16"] += 1
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(prologue + nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return counts


def export(module: torch.nn.Module, args: tuple, path: Path, input_names: list[str], output_names: list[str],
           dynamic_axes: dict, settings: ExportSettings) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    module.eval()
    with torch.no_grad():
        torch.onnx.export(module, args, str(path), input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic_axes, opset_version=OPSET, do_constant_folding=True, dynamo=False)
    if settings.weights != "fp32":
        store_weights(path, settings.weights)


def check(path: Path, module: torch.nn.Module, feeds: dict[str, np.ndarray], torch_args: tuple, tolerance: float) -> float:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, feeds)
    with torch.no_grad():
        want = module(*torch_args)
    want = want if isinstance(want, tuple) else (want,)
    worst = max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want, strict=True))
    if worst > tolerance:
        raise AssertionError(f"{path}: onnxruntime differs from torch by {worst:.2e} (tolerance {tolerance:.0e})")
    return worst


def write_json(path: Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, sort_keys=True, allow_nan=False) + "\n")


def model_index(class_name: str, scheduler_class: str) -> dict:
    # As DiffusionPipeline.save_pretrained writes it for diffusers' ONNX pipelines (§1.1), so
    # OnnxStableDiffusion*Pipeline.from_pretrained(folder) loads each part as an OnnxRuntimeModel. The
    # engine finds the parts by folder and ignores these entries.
    onnx_part = ["diffusers", "OnnxRuntimeModel"]
    return {"_class_name": class_name, "_diffusers_version": DIFFUSERS_VERSION,
            "feature_extractor": [None, None], "requires_safety_checker": False,
            "safety_checker": [None, None], "scheduler": ["diffusers", scheduler_class],
            "text_encoder": onnx_part, "tokenizer": ["transformers", "CLIPTokenizer"],
            "unet": onnx_part, "vae_decoder": onnx_part, "vae_encoder": onnx_part}


def lcm_model_index(class_name: str) -> dict:
    # As optimum writes it for an LCM model (the torch pipeline's config, torch class names; a "vae"
    # entry although the folders are vae_encoder/ and vae_decoder/; sd-onnx-reference §1.2).
    return {"_class_name": class_name, "_diffusers_version": DIFFUSERS_VERSION,
            "feature_extractor": [None, None], "image_encoder": [None, None], "requires_safety_checker": False,
            "safety_checker": [None, None], "scheduler": ["diffusers", "LCMScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}


def lcm_scheduler_config(cfg: Config, stage: str) -> dict:
    """LCMScheduler over the training noise schedule, with the stage's ("text2img" or "inpaint")
    distillation DDIM timestep count as original_inference_steps and its boundary-condition timestep_scaling."""
    s = cfg["noise_schedule"]
    lcm = cfg["train_lcm"]
    scheduler = diffusers.LCMScheduler(num_train_timesteps=s["num_train_timesteps"], beta_start=s["beta_start"],
                                       beta_end=s["beta_end"], beta_schedule=s["beta_schedule"],
                                       prediction_type=s["prediction_type"], original_inference_steps=lcm_stage_value(lcm, "num_ddim_timesteps", stage),
                                       timestep_scaling=lcm["timestep_scaling"], steps_offset=1)
    config = {k: v for k, v in dict(scheduler.config).items() if not k.startswith("_")}
    return {"_class_name": "LCMScheduler", "_diffusers_version": DIFFUSERS_VERSION, **config}


def load_lcm_stage(stage_dir: Path) -> tuple[UNet2DConditionModel, dict] | None:
    """The distilled U-Net (the target network θ⁻): unet.pt when the stage is finished, else the running
    stage's state.pt; None when the stage has not started."""
    path = stage_dir / "unet.pt"
    if not path.exists():
        path = stage_dir / "state.pt"
    if not path.exists():
        return None
    saved = torch.load(path, map_location="cpu", weights_only=False)
    finished = path.name == "unet.pt"
    unet = UNet2DConditionModel.from_config(saved["unet_config"])
    unet.load_state_dict(saved["unet"] if finished else saved["target"])
    info = {"step": saved["steps"] if finished else saved["step"], "snapshot": not finished, "teacher": saved.get("teacher"),
            "teacher_digest": saved.get("teacher_digest")}
    return unet.eval(), info


def export_lcm(cfg: Config, base: Path, dst: Path, unet: UNet2DConditionModel, hidden_size: int, class_name: str,
               settings: ExportSettings, stage: str) -> dict:
    """An LCM folder: the teacher folder's text encoder, VAE and tokenizer (copied: distillation changes
    only the U-Net), LCMScheduler, and the distilled U-Net with its `timestep_cond` input."""
    for sub in SUBMODELS:
        shutil.rmtree(dst / sub, ignore_errors=True)
    for sub in ("text_encoder", "vae_encoder", "vae_decoder", "tokenizer"):
        shutil.copytree(base / sub, dst / sub)
    write_json(dst / "scheduler" / "scheduler_config.json", lcm_scheduler_config(cfg, stage))
    report = {"text_encoder": f"copied from {base.name}", "unet": export_unet(dst, unet, hidden_size, settings)}
    write_json(dst / "model_index.json", lcm_model_index(class_name))
    return report


def scheduler_config(cfg: Config) -> tuple[str, dict]:
    """The training noise schedule with the configured sampler class (export.scheduler.class). Its
    init_noise_sigma must be a plain number: diffusers 0.42's ONNX text-to-image pipeline multiplies its
    numpy latents by it, which fails for the Euler / LMS / Heun classes (a torch tensor there)."""
    s = cfg["noise_schedule"]
    inference = cfg["export"]["scheduler"]
    class_name = inference.get("class", "EulerDiscreteScheduler")
    scheduler_class = getattr(diffusers, class_name)
    scheduler = scheduler_class(num_train_timesteps=s["num_train_timesteps"], beta_start=s["beta_start"],
                                beta_end=s["beta_end"], beta_schedule=s["beta_schedule"],
                                prediction_type=s["prediction_type"], timestep_spacing=inference["timestep_spacing"],
                                steps_offset=inference["steps_offset"])
    # Non-finite defaults (DPM-Solver's lambda_min_clipped = -inf) are left out: Python would write
    # -Infinity, which is not JSON, and the class default is the same value when the key is missing.
    config = {k: v for k, v in dict(scheduler.config).items()
              if not k.startswith("_") and not (isinstance(v, float) and not math.isfinite(v))}
    return class_name, {"_class_name": class_name, "_diffusers_version": DIFFUSERS_VERSION, **config}


def zero_untrained_rows(text_encoder: CLIPTextModel, trained_ids: list[int]) -> None:
    """Sets the token-embedding rows no training caption reaches to zero (they hold their random
    initial values), which is what the compact export computes for them."""
    weight = text_encoder.get_input_embeddings().weight
    untrained = torch.ones(weight.shape[0], dtype=torch.bool)
    untrained[trained_ids] = False
    with torch.no_grad():
        weight[untrained] = 0


def export_text_encoder(out: Path, text_encoder: CLIPTextModel, settings: ExportSettings, trained_ids: list[int]) -> float:
    """Exports with the compact token table (see CompactTokenEmbedding) and checks it against the plain
    torch model, whose untrained rows the caller has cleared (zero_untrained_rows, beside round_weights)."""
    bos, eos = text_encoder.config.bos_token_id, text_encoder.config.eos_token_id
    untrained = sorted(set(range(text_encoder.config.vocab_size)) - set(trained_ids))[:3]
    # int32 ids, as diffusers' ONNX pipelines feed them (§2.1); trained and untrained pieces both.
    ordinary = [i for i in trained_ids if i not in (bos, eos)]
    rows = [[bos, *ordinary[-6:], eos], [bos, *untrained, *ordinary[:3], eos]]
    ids = torch.tensor([row + [eos] * (77 - len(row)) for row in rows], dtype=torch.int32)
    path = out / "text_encoder" / "model.onnx"
    export(TextEncoderGraph(text_encoder, trained_ids), (ids,), path, ["input_ids"], ["last_hidden_state", "pooler_output"],
           {"input_ids": {0: "batch_size", 1: "sequence_length"}, "last_hidden_state": {0: "batch_size", 1: "sequence_length"},
            "pooler_output": {0: "batch_size"}}, settings)
    text_encoder.config.save_pretrained(out / "text_encoder")
    plain = TextEncoderGraph(text_encoder)
    return check(path, plain, {"input_ids": ids.numpy()}, (ids,), 1e-3)


def exported_vae_config(vae: AutoencoderKL, settings: ExportSettings) -> dict:
    """The VAE's diffusers config as the exported graphs behave: scaling factor 0.18215 and, with
    pixel_repeat r, log2(r) more levels (the engine and optimum derive the VAE factor from
    len(block_out_channels)) and r× the sample size. The trained values are kept under a private key
    (diffusers drops keys that start with "_")."""
    config = {"_class_name": "AutoencoderKL", "_diffusers_version": DIFFUSERS_VERSION,
              **{k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(vae.config).items() if not k.startswith("_")}}
    trained = {k: config[k] for k in ("scaling_factor", "block_out_channels", "sample_size", "down_block_types", "up_block_types")}
    extra_levels = int(math.log2(settings.pixel_repeat))
    exported_factor = 2 ** (len(trained["block_out_channels"]) - 1 + extra_levels)
    if exported_factor != DIFFUSERS_ONNX_VAE_FACTOR:
        print(f"export: the exported VAE factor is {exported_factor}, not {DIFFUSERS_ONNX_VAE_FACTOR}: diffusers' ONNX "
              "inpainting pipeline will not run these folders (set export.pixel_repeat so the product is 8)", flush=True)
    config["scaling_factor"] = DIFFUSERS_ONNX_SCALING_FACTOR
    config["sample_size"] = trained["sample_size"] * settings.pixel_repeat
    for key in ("block_out_channels", "down_block_types", "up_block_types"):
        values = list(trained[key])
        config[key] = values + [values[-1]] * extra_levels
    config["_latent_studio_export"] = {
        "pixel_repeat": settings.pixel_repeat, "latent_gain": settings.latent_gain, "trained": trained,
        "note": "graphs: encoder = avg-pool by pixel_repeat, then the trained encoder, mean x latent_gain; "
                "decoder = input / latent_gain, the trained decoder, nearest upscale by pixel_repeat"}
    return config


def export_shared(cfg: Config, out: Path, vae: AutoencoderKL, text_encoder: CLIPTextModel, settings: ExportSettings,
                  trained_ids: list[int]) -> dict:
    size = cfg["data"]["image_size"] * settings.pixel_repeat
    vae_config = exported_vae_config(vae, settings)
    latent = vae_config["latent_channels"]
    f = 2 ** (len(vae_config["block_out_channels"]) - 1)
    report = {"text_encoder": export_text_encoder(out, text_encoder, settings, trained_ids)}

    image = torch.rand(1, 3, size, size) * 2 - 1
    path = out / "vae_encoder" / "model.onnx"
    graph = VaeEncoderGraph(vae, settings)
    export(graph, (image,), path, ["sample"], ["latent_sample", "latent_parameters"],
           {"sample": {0: "batch_size", 2: "sample_height", 3: "sample_width"},
            "latent_sample": {0: "batch_size", 2: "latent_height", 3: "latent_width"},
            "latent_parameters": {0: "batch_size", 2: "latent_height", 3: "latent_width"}}, settings)
    report["vae_encoder"] = check(path, graph, {"sample": image.numpy()}, (image,), 1e-3)
    write_json(out / "vae_encoder" / "config.json", vae_config)

    latents = torch.randn(1, latent, size // f, size // f)
    path = out / "vae_decoder" / "model.onnx"
    graph = VaeDecoderGraph(vae, settings)
    export(graph, (latents,), path, ["latent_sample"], ["sample"],
           {"latent_sample": {0: "batch_size", 2: "latent_height", 3: "latent_width"},
            "sample": {0: "batch_size", 2: "sample_height", 3: "sample_width"}}, settings)
    report["vae_decoder"] = check(path, graph, {"latent_sample": latents.numpy()}, (latents,), 1e-3)
    write_json(out / "vae_decoder" / "config.json", vae_config)

    tokenizer_out = out / "tokenizer"
    tokenizer_out.mkdir(parents=True, exist_ok=True)
    for name in ("vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"):
        shutil.copyfile(TOKENIZER_DIR / cfg.name / name, tokenizer_out / name)
    class_name, config = scheduler_config(cfg)
    write_json(out / "scheduler" / "scheduler_config.json", config)
    return report


def export_unet(out: Path, unet: UNet2DConditionModel, hidden_size: int, settings: ExportSettings,
                label_channels: int = 0) -> float:
    """Exports a U-Net; with label_channels > 0 it is a layout U-Net whose last label_channels input
    channels come from the separate `label_map` input; a U-Net with time_cond_proj_dim (LCM) gets the
    `timestep_cond` input."""
    c = unet.config
    sample_channels = c.in_channels - label_channels
    sample = torch.randn(2, sample_channels, c.sample_size, c.sample_size)
    # Rank 1, fed as [1] even under CFG (diffusers' ONNX pipelines; the U-Net expands it to the batch).
    timestep = torch.tensor([500.0])
    hidden = torch.randn(2, 77, hidden_size)
    path = out / "unet" / "model.onnx"
    names = ["sample", "timestep", "encoder_hidden_states"]
    axes = {"sample": {0: "batch_size", 2: "height", 3: "width"}, "timestep": {0: "timestep_batch"},
            "encoder_hidden_states": {0: "batch_size", 1: "sequence_length"},
            "out_sample": {0: "batch_size", 2: "height", 3: "width"}}
    args: tuple = (sample, timestep, hidden)
    cond_dim = c.get("time_cond_proj_dim")
    if cond_dim:
        timestep_cond = torch.randn(2, cond_dim)
        graph: torch.nn.Module = LcmUNetGraph(unet)
        names.append("timestep_cond")
        axes["timestep_cond"] = {0: "batch_size"}
        args = (*args, timestep_cond)
    elif label_channels:
        # A soft map (rows of a Dirichlet-like mix) rather than a one-hot, so the check covers fractions too.
        label_map = torch.rand(2, label_channels, c.sample_size, c.sample_size)
        label_map /= label_map.sum(1, keepdim=True)
        graph = LayoutUNetGraph(unet)
        names.append("label_map")
        axes["label_map"] = {0: "batch_size", 2: "height", 3: "width"}
        args = (*args, label_map)
    else:
        graph = UNetGraph(unet)
    export(graph, args, path, names, ["out_sample"], axes, settings)
    unet.save_config(out / "unet")
    feeds = {"sample": sample.numpy(), "timestep": np.array([500.0], dtype=np.float32), "encoder_hidden_states": hidden.numpy()}
    if label_channels:
        feeds["label_map"] = args[3].numpy()
    if cond_dim:
        feeds["timestep_cond"] = args[3].numpy()
    return check(path, graph, feeds, args, 2e-3)


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def export_derived(cfg: Config, base: Path, dst: Path, unet: UNet2DConditionModel, text_encoder_state: dict,
                   text_encoder: CLIPTextModel, class_name: str, settings: ExportSettings, trained_ids: list[int],
                   label_channels: int = 0) -> dict:
    """A folder that shares the VAE, tokenizer and scheduler with the text-to-image folder (copied). Its
    text encoder is the frozen one the stage trained with: a copy when it is the exported one, else
    exported from the stage's own weights (the stage started from an older text-to-image snapshot)."""
    for sub in SUBMODELS:
        shutil.rmtree(dst / sub, ignore_errors=True)
    for sub in ("vae_encoder", "vae_decoder", "tokenizer", "scheduler"):
        shutil.copytree(base / sub, dst / sub)
    report: dict = {}
    own = {k: v.clone() for k, v in text_encoder_state.items()}
    stage_encoder = CLIPTextModel(text_encoder.config)
    stage_encoder.load_state_dict(own)
    stage_encoder.eval()
    round_weights(stage_encoder, settings)
    zero_untrained_rows(stage_encoder, trained_ids)
    if same_weights(stage_encoder.state_dict(), text_encoder.state_dict()):
        shutil.copytree(base / "text_encoder", dst / "text_encoder")
        report["text_encoder"] = "copied from the text-to-image folder (same weights)"
    else:
        report["text_encoder"] = export_text_encoder(dst, stage_encoder, settings, trained_ids)
    report["unet"] = export_unet(dst, unet, text_encoder.config.hidden_size, settings, label_channels)
    write_json(dst / "model_index.json", model_index(class_name, scheduler_config(cfg)[0]))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_args(parser)
    parser.add_argument("--out-root", type=Path, default=None,
                        help="write the folders (and export_report.json) here instead of the default export root")
    parser.add_argument("--weights", choices=WEIGHT_STORAGE, default=None, help="weight storage (overrides export.weights)")
    args = parser.parse_args()
    cfg = load_config(args)
    if args.out_root:
        cfg.export_root = args.out_root
    limit_threads(1)
    saved_vae = torch.load(cfg.runs_dir / "vae" / "vae.pt", map_location="cpu", weights_only=False)
    vae = build_vae(saved_vae["config"])
    vae.load_state_dict(saved_vae["model"])
    vae.eval()
    settings = ExportSettings.from_config(cfg, float(saved_vae["config"]["scaling_factor"]), args.weights)
    round_weights(vae, settings)
    unet, text_encoder, text2img_info = load_text2img(cfg, allow_snapshot=True)
    round_weights(unet, settings)
    round_weights(text_encoder, settings)
    trained_ids = trained_token_ids(cfg)
    zero_untrained_rows(text_encoder, trained_ids)
    hidden = text_encoder.config.hidden_size

    report: dict = {}
    out = cfg.export_dir
    for sub in SUBMODELS:
        shutil.rmtree(out / sub, ignore_errors=True)
    report[out.name] = export_shared(cfg, out, vae, text_encoder, settings, trained_ids)
    report[out.name]["unet"] = export_unet(out, unet, hidden, settings)
    scheduler_class = scheduler_config(cfg)[0]
    write_json(out / "model_index.json", model_index("OnnxStableDiffusionPipeline", scheduler_class))

    derived_info = {}
    for stage, dst, class_name, label_channels in (
            ("inpaint", cfg.inpaint_export_dir, "OnnxStableDiffusionInpaintPipeline", 0),
            # No diffusers pipeline feeds label_map; the class says which parts to load, for inspection.
            ("layout", cfg.layout_export_dir, "OnnxStableDiffusionPipeline", NUM_LABELS)):
        loaded = load_derived_stage(cfg.runs_dir / stage)
        if loaded is None:
            print(f"export: no {stage} U-Net yet ({cfg.runs_dir / stage} has no unet.pt or state.pt); skipped {dst.name}", flush=True)
            derived_info[stage] = None
            continue
        stage_unet, info, te_state = loaded
        round_weights(stage_unet, settings)
        report[dst.name] = export_derived(cfg, out, dst, stage_unet, te_state, text_encoder, class_name, settings, trained_ids,
                                        label_channels)
        if label_channels:
            write_labels_json(dst / "labels.json")
        derived_info[stage] = info
    lcm_info = {}
    for stage, distilled, base, dst, class_name in (
            ("lcm", "text2img", cfg.export_dir, cfg.lcm_export_dir, "LatentConsistencyModelPipeline"),
            # diffusers has no LCM inpainting pipeline: its inpainting pipeline runs an LCM U-Net with LCMScheduler.
            ("lcm_inpaint", "inpaint", cfg.inpaint_export_dir, cfg.inpaint_lcm_export_dir, "StableDiffusionInpaintPipeline")):
        loaded_lcm = load_lcm_stage(cfg.runs_dir / stage)
        if loaded_lcm is None or not base.exists():
            print(f"export: no {stage} U-Net yet (or no {base.name} folder); skipped {dst.name}", flush=True)
            lcm_info[stage] = None
            continue
        lcm_unet, info = loaded_lcm
        round_weights(lcm_unet, settings)
        report[dst.name] = export_lcm(cfg, base, dst, lcm_unet, hidden, class_name, settings, distilled)
        lcm_info[stage] = info
    sizes = {p.relative_to(cfg.export_root).as_posix(): p.stat().st_size
             for d in (cfg.export_dir, cfg.inpaint_export_dir, cfg.layout_export_dir, cfg.lcm_export_dir, cfg.inpaint_lcm_export_dir)
             if d.exists() for p in d.rglob("*.onnx")}
    summary = {"text2img_step": text2img_info, "inpaint_step": derived_info["inpaint"], "layout_step": derived_info["layout"],
               "lcm_step": lcm_info["lcm"], "inpaint_lcm_step": lcm_info["lcm_inpaint"],
               "settings": settings.__dict__,
               "token_rows": {"trained": len(trained_ids), "vocabulary": text_encoder.config.vocab_size},
               "max_abs_diff_vs_torch": report, "onnx_bytes": sizes,
               "onnx_bytes_total": sum(sizes.values())}
    report_dir = args.out_root or cfg.work_dir
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "export_report.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1), flush=True)


if __name__ == "__main__":
    main()
