"""Stage 5: export the trained networks to the diffusers ONNX folder layout that optimum writes
(docs/sd-onnx-reference.md §1.2, §2.2) and check every submodel against torch with onnxruntime.

  <export_root>/emoji-ldm/          text-to-image (4-channel U-Net)
  <export_root>/emoji-ldm-inpaint/  inpainting (9-channel U-Net); text encoder, VAE, tokenizer and
                                    scheduler are byte-identical copies of the ones above
  <export_root>/emoji-ldm-layout/   layout (U-Net with an extra input label_map [batch, K, h, w] that the
                                    graph concatenates to sample; labels.json names the K labels);
                                    the other parts are copies as for inpainting

Submodel I/O: text_encoder input_ids int64 [batch, sequence] → last_hidden_state, pooler_output;
unet sample [batch, C, h, w] (C static), timestep float32 scalar, encoder_hidden_states (+ label_map for
layout) → out_sample;
vae_encoder sample → latent_parameters (mean ‖ logvar, deterministic); vae_decoder latent_sample → sample.
Weights are stored as fp16 initializers followed by a Cast to float32, so files are half size while
every graph input, output and op stays float32 (onnxruntime folds the Casts when it loads the model).
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
from onnx import helper, numpy_helper
from transformers import CLIPTextModel

from .build_tokenizer import TOKENIZER_DIR
from .config import Config, add_common_args, load_config
from .labels import NUM_LABELS, write_labels_json
from .models import build_vae, limit_threads
from .train_unet import load_text2img

OPSET = 17
# Initializers smaller than this stay float32 (biases and norms: tiny, and exact matters more there).
FP16_MIN_ELEMENTS = 1024
DIFFUSERS_VERSION = "0.42.1"


class TextEncoderGraph(torch.nn.Module):
    def __init__(self, model: CLIPTextModel):
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        out = self.model(input_ids=input_ids, return_dict=True)
        return out.last_hidden_state, out.pooler_output


class UNetGraph(torch.nn.Module):
    def __init__(self, unet: UNet2DConditionModel):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states):
        return self.unet(sample, timestep, encoder_hidden_states, return_dict=False)[0]


class LayoutUNetGraph(torch.nn.Module):
    """The layout U-Net as the engine sees it: the text-to-image inputs plus `label_map`, concatenated to
    `sample` inside the graph (conv_in takes latent + K channels)."""

    def __init__(self, unet: UNet2DConditionModel):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states, label_map):
        return self.unet(torch.cat([sample, label_map], dim=1), timestep, encoder_hidden_states, return_dict=False)[0]


class VaeEncoderGraph(torch.nn.Module):
    def __init__(self, vae: AutoencoderKL):
        super().__init__()
        self.vae = vae

    def forward(self, sample):
        # optimum ≥ 1.23: latent_dist.parameters (mean ‖ logvar); sampling is left to the caller.
        return self.vae.encode(sample).latent_dist.parameters


class VaeDecoderGraph(torch.nn.Module):
    def __init__(self, vae: AutoencoderKL):
        super().__init__()
        self.vae = vae

    def forward(self, latent_sample):
        return self.vae.decode(latent_sample).sample


def round_to_fp16(module: torch.nn.Module) -> None:
    """Rounds weights to fp16 precision so the fp16-stored export computes exactly what torch checks."""
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.dtype == torch.float32 and tensor.numel() >= FP16_MIN_ELEMENTS:
                tensor.copy_(tensor.half().float())


def store_weights_fp16(path: Path) -> None:
    model = onnx.load(str(path))
    graph = model.graph
    casts = []
    kept = []
    for init in graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT and int(np.prod(init.dims)) >= FP16_MIN_ELEMENTS:
            half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name + "_fp16")
            kept.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT,
                                          name=init.name + "_to_fp32"))
        else:
            kept.append(init)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def export(module: torch.nn.Module, args: tuple, path: Path, input_names: list[str], output_names: list[str],
           dynamic_axes: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    module.eval()
    with torch.no_grad():
        torch.onnx.export(module, args, str(path), input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic_axes, opset_version=OPSET, do_constant_folding=True, dynamo=False)
    store_weights_fp16(path)


def check(path: Path, module: torch.nn.Module, feeds: dict[str, np.ndarray], torch_args: tuple, tolerance: float) -> float:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, feeds)
    with torch.no_grad():
        want = module(*torch_args)
    want = want if isinstance(want, tuple) else (want,)
    worst = max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want))
    if worst > tolerance:
        raise AssertionError(f"{path}: onnxruntime differs from torch by {worst:.2e} (tolerance {tolerance:.0e})")
    return worst


def write_json(path: Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")


def model_index(class_name: str, scheduler_class: str) -> dict:
    # The torch pipeline's config, as optimum-cli export writes it (§1.2).
    return {"_class_name": class_name, "_diffusers_version": DIFFUSERS_VERSION,
            "feature_extractor": [None, None], "image_encoder": [None, None], "requires_safety_checker": False,
            "safety_checker": [None, None], "scheduler": ["diffusers", scheduler_class],
            "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}


def scheduler_config(cfg: Config) -> tuple[str, dict]:
    s = cfg["noise_schedule"]
    inference = cfg["export"]["scheduler"]
    scheduler = EulerDiscreteScheduler(num_train_timesteps=s["num_train_timesteps"], beta_start=s["beta_start"],
                                       beta_end=s["beta_end"], beta_schedule=s["beta_schedule"],
                                       prediction_type=s["prediction_type"], timestep_spacing=inference["timestep_spacing"],
                                       steps_offset=inference["steps_offset"])
    config = {k: v for k, v in dict(scheduler.config).items() if not k.startswith("_")}
    return "EulerDiscreteScheduler", {"_class_name": "EulerDiscreteScheduler", "_diffusers_version": DIFFUSERS_VERSION, **config}


def export_text_encoder(out: Path, text_encoder: CLIPTextModel) -> float:
    ids = torch.tensor([[text_encoder.config.bos_token_id, 5, 6, text_encoder.config.eos_token_id] + [text_encoder.config.eos_token_id] * 73] * 2)
    path = out / "text_encoder" / "model.onnx"
    graph = TextEncoderGraph(text_encoder)
    export(graph, (ids,), path, ["input_ids"], ["last_hidden_state", "pooler_output"],
           {"input_ids": {0: "batch_size", 1: "sequence_length"}, "last_hidden_state": {0: "batch_size", 1: "sequence_length"},
            "pooler_output": {0: "batch_size"}})
    text_encoder.config.save_pretrained(out / "text_encoder")
    return check(path, graph, {"input_ids": ids.numpy()}, (ids,), 1e-3)


def export_shared(cfg: Config, out: Path, vae: AutoencoderKL, vae_config: dict, text_encoder: CLIPTextModel) -> dict:
    size = cfg["data"]["image_size"]
    latent = vae_config["latent_channels"]
    f = 2 ** (len(vae_config["block_out_channels"]) - 1)
    report = {"text_encoder": export_text_encoder(out, text_encoder)}

    image = torch.rand(1, 3, size, size) * 2 - 1
    path = out / "vae_encoder" / "model.onnx"
    graph = VaeEncoderGraph(vae)
    export(graph, (image,), path, ["sample"], ["latent_parameters"],
           {"sample": {0: "batch_size", 2: "sample_height", 3: "sample_width"},
            "latent_parameters": {0: "batch_size", 2: "latent_height", 3: "latent_width"}})
    report["vae_encoder"] = check(path, graph, {"sample": image.numpy()}, (image,), 1e-3)
    vae.save_config(out / "vae_encoder")

    latents = torch.randn(1, latent, size // f, size // f)
    path = out / "vae_decoder" / "model.onnx"
    graph = VaeDecoderGraph(vae)
    export(graph, (latents,), path, ["latent_sample"], ["sample"],
           {"latent_sample": {0: "batch_size", 2: "latent_height", 3: "latent_width"},
            "sample": {0: "batch_size", 2: "sample_height", 3: "sample_width"}})
    report["vae_decoder"] = check(path, graph, {"latent_sample": latents.numpy()}, (latents,), 1e-3)
    vae.save_config(out / "vae_decoder")

    tokenizer_out = out / "tokenizer"
    tokenizer_out.mkdir(parents=True, exist_ok=True)
    for name in ("vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"):
        shutil.copyfile(TOKENIZER_DIR / cfg.name / name, tokenizer_out / name)
    class_name, config = scheduler_config(cfg)
    write_json(out / "scheduler" / "scheduler_config.json", config)
    return report


def export_unet(out: Path, unet: UNet2DConditionModel, hidden_size: int, label_channels: int = 0) -> float:
    """Exports a U-Net; with label_channels > 0 it is a layout U-Net whose last label_channels input
    channels come from the separate `label_map` input."""
    c = unet.config
    sample_channels = c.in_channels - label_channels
    sample = torch.randn(2, sample_channels, c.sample_size, c.sample_size)
    timestep = torch.tensor(500.0)
    hidden = torch.randn(2, 77, hidden_size)
    path = out / "unet" / "model.onnx"
    names = ["sample", "timestep", "encoder_hidden_states"]
    axes = {"sample": {0: "batch_size", 2: "height", 3: "width"},
            "encoder_hidden_states": {0: "batch_size", 1: "sequence_length"},
            "out_sample": {0: "batch_size", 2: "height", 3: "width"}}
    args: tuple = (sample, timestep, hidden)
    if label_channels:
        # A soft map (rows of a Dirichlet-like mix) rather than a one-hot, so the check covers fractions too.
        label_map = torch.rand(2, label_channels, c.sample_size, c.sample_size)
        label_map /= label_map.sum(1, keepdim=True)
        graph: torch.nn.Module = LayoutUNetGraph(unet)
        names.append("label_map")
        axes["label_map"] = {0: "batch_size", 2: "height", 3: "width"}
        args = (*args, label_map)
    else:
        graph = UNetGraph(unet)
    export(graph, args, path, names, ["out_sample"], axes)
    unet.save_config(out / "unet")
    feeds = {"sample": sample.numpy(), "timestep": np.array(500.0, dtype=np.float32), "encoder_hidden_states": hidden.numpy()}
    if label_channels:
        feeds["label_map"] = args[3].numpy()
    return check(path, graph, feeds, args, 2e-3)


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


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def export_derived(cfg: Config, base: Path, dst: Path, unet: UNet2DConditionModel, text_encoder_state: dict,
                   text_encoder: CLIPTextModel, class_name: str, label_channels: int = 0) -> dict:
    """A folder that shares the VAE, tokenizer and scheduler with the text-to-image folder (copied). Its
    text encoder is the frozen one the stage trained with: a copy when it is the exported one, else
    exported from the stage's own weights (the stage started from an older text-to-image snapshot)."""
    for sub in ("text_encoder", "unet", "vae_encoder", "vae_decoder", "tokenizer", "scheduler"):
        shutil.rmtree(dst / sub, ignore_errors=True)
    for sub in ("vae_encoder", "vae_decoder", "tokenizer", "scheduler"):
        shutil.copytree(base / sub, dst / sub)
    report: dict = {}
    own = {k: v.clone() for k, v in text_encoder_state.items()}
    stage_encoder = CLIPTextModel(text_encoder.config)
    stage_encoder.load_state_dict(own)
    stage_encoder.eval()
    round_to_fp16(stage_encoder)
    if same_weights(stage_encoder.state_dict(), text_encoder.state_dict()):
        shutil.copytree(base / "text_encoder", dst / "text_encoder")
        report["text_encoder"] = "copied from the text-to-image folder (same weights)"
    else:
        report["text_encoder"] = export_text_encoder(dst, stage_encoder)
    report["unet"] = export_unet(dst, unet, text_encoder.config.hidden_size, label_channels)
    write_json(dst / "model_index.json", model_index(class_name, scheduler_config(cfg)[0]))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_args(parser)
    args = parser.parse_args()
    cfg = load_config(args)
    limit_threads(1)
    saved_vae = torch.load(cfg.runs_dir / "vae" / "vae.pt", map_location="cpu", weights_only=False)
    vae = build_vae(saved_vae["config"])
    vae.load_state_dict(saved_vae["model"])
    vae.eval()
    round_to_fp16(vae)
    unet, text_encoder, text2img_info = load_text2img(cfg, allow_snapshot=True)
    round_to_fp16(unet)
    round_to_fp16(text_encoder)
    hidden = text_encoder.config.hidden_size

    report: dict = {}
    out = cfg.export_dir
    for sub in ("text_encoder", "unet", "vae_encoder", "vae_decoder", "tokenizer", "scheduler"):
        shutil.rmtree(out / sub, ignore_errors=True)
    report[out.name] = export_shared(cfg, out, vae, saved_vae["config"], text_encoder)
    report[out.name]["unet"] = export_unet(out, unet, hidden)
    scheduler_class = scheduler_config(cfg)[0]
    write_json(out / "model_index.json", model_index("StableDiffusionPipeline", scheduler_class))

    derived_info = {}
    for stage, dst, class_name, label_channels in (
            ("inpaint", cfg.inpaint_export_dir, "StableDiffusionInpaintPipeline", 0),
            ("layout", cfg.layout_export_dir, "StableDiffusionPipeline", NUM_LABELS)):
        loaded = load_derived_stage(cfg.runs_dir / stage)
        if loaded is None:
            print(f"export: no {stage} U-Net yet ({cfg.runs_dir / stage} has no unet.pt or state.pt); skipped {dst.name}", flush=True)
            derived_info[stage] = None
            continue
        stage_unet, info, te_state = loaded
        round_to_fp16(stage_unet)
        report[dst.name] = export_derived(cfg, out, dst, stage_unet, te_state, text_encoder, class_name, label_channels)
        if label_channels:
            write_labels_json(dst / "labels.json")
        derived_info[stage] = info
    sizes = {p.relative_to(cfg.export_root).as_posix(): p.stat().st_size
             for d in (cfg.export_dir, cfg.inpaint_export_dir, cfg.layout_export_dir) if d.exists() for p in d.rglob("*.onnx")}
    summary = {"text2img_step": text2img_info, "inpaint_step": derived_info["inpaint"], "layout_step": derived_info["layout"], "max_abs_diff_vs_torch": report, "onnx_bytes": sizes, "onnx_bytes_total": sum(sizes.values())}
    (cfg.work_dir / "export_report.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1), flush=True)


if __name__ == "__main__":
    main()
