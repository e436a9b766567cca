"""Export to the ONNX folder layout that `optimum-cli export onnx` (optimum >= 1.24) writes, which the
engine reads (test/fixtures/README.md, tiny-optimum; /work/shared/docs/sd-onnx-reference.md §1.2, §2.2):

  model_index.json                  the torch pipeline's config, as optimum writes it
  scheduler/scheduler_config.json
  tokenizer/                        vocab.json, merges.txt, special_tokens_map.json, tokenizer_config.json
  text_encoder/model.onnx           input_ids int64 [batch_size, sequence_length] -> last_hidden_state, pooler_output
  unet/model.onnx + model.onnx_data sample [batch_size, C, height, width] (C static), timestep float32 [] (rank 0),
                                    encoder_hidden_states [batch_size, sequence_length, D]
                                    (+ timestep_cond [batch_size, W] for LCM) -> out_sample
  vae_encoder/model.onnx            sample -> latent_parameters (mean || logvar: deterministic, seeded by the engine)
  vae_decoder/model.onnx            latent_sample -> sample
  <part>/config.json                each submodel's config (the engine reads sizes and scaling_factor from them)

SDXL (optimum's SDXL configs, output_hidden_states=True on both encoders; wave2-reference §2a):

  text_encoder/model.onnx           input_ids int64 -> last_hidden_state, pooler_output, hidden_states.0 … hidden_states.L
  text_encoder_2/model.onnx         input_ids int64 -> text_embeds, last_hidden_state, hidden_states.0 … hidden_states.L
  unet/model.onnx + model.onnx_data  … + text_embeds [batch_size, P], time_ids [batch_size, 6 (5: refiner)]
  tokenizer_2/                      the bigG tokenizer (pads with "!")
  model_index.json                  StableDiffusionXL{,Img2Img,Inpaint}Pipeline with force_zeros_for_empty_prompt and
                                    requires_aesthetics_score; a refiner has text_encoder/tokenizer [null, null]

The TorchScript exporter (dynamo=False) is used, as optimum does. The UNet's weights always go to
`model.onnx_data` (a real SD UNet is over protobuf's 2 GB limit).

--fp16 converts text_encoder, unet and vae_encoder with onnxruntime's `convert_float_to_float16`
(keep_io_types=False, as ORT's optimize_pipeline.py --float16 and Olive do), so their float inputs
and outputs become float16; vae_decoder stays float32 because the SD 1.x/2.x VAE decoder overflows
float16 (the reason for madebyollin/sdxl-vae-fp16-fix). A VAE whose config says `force_upcast` (SDXL's)
keeps its encoder float32 too, as diffusers upcasts it for encoding; text_encoder_2 is converted like
text_encoder. No graph fusions: their contrib ops only have
CUDA kernels, and the result must run on every provider.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from .sources import ConversionError, SourceModel
from .tokenizer import write_tokenizer_folder

DEFAULT_OPSET = 17  # optimum's SD default is 18; 17 is in the 14-17 range the engine targets
# optimum DEFAULT_DUMMY_SHAPES
DUMMY_BATCH = 2
DUMMY_SEQUENCE = 16
UNET_EXTERNAL_DATA = "model.onnx_data"
# ONNX vs torch on the dummy inputs: float32 exports agree to ~1e-5 relative (the fixtures: 2e-6 to 7e-6).
FP32_TOLERANCE = 1e-3


class _TextEncoder(torch.nn.Module):
    def __init__(self, text_encoder):
        super().__init__()
        self.text_encoder = text_encoder

    def forward(self, input_ids):
        out = self.text_encoder(input_ids=input_ids)
        return out.last_hidden_state, out.pooler_output


class _TextEncoderHidden(torch.nn.Module):
    """SDXL's CLIPTextOnnxConfig with output_hidden_states: last_hidden_state, pooler_output, hidden_states.*."""

    def __init__(self, text_encoder):
        super().__init__()
        self.text_encoder = text_encoder

    def forward(self, input_ids):
        out = self.text_encoder(input_ids=input_ids, output_hidden_states=True)
        return (out.last_hidden_state, out.pooler_output, *out.hidden_states)


class _TextEncoderWithProjectionHidden(torch.nn.Module):
    """CLIPTextWithProjectionOnnxConfig with output_hidden_states: text_embeds, last_hidden_state, hidden_states.*."""

    def __init__(self, text_encoder):
        super().__init__()
        self.text_encoder = text_encoder

    def forward(self, input_ids):
        out = self.text_encoder(input_ids=input_ids, output_hidden_states=True)
        return (out.text_embeds, out.last_hidden_state, *out.hidden_states)


class _UNet(torch.nn.Module):
    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states, timestep_cond=None):
        return self.unet(sample, timestep, encoder_hidden_states, timestep_cond=timestep_cond, return_dict=False)[0]


class _SdxlUNet(torch.nn.Module):
    """UNetOnnxConfig with addition_embed_type "text_time": text_embeds and time_ids go to added_cond_kwargs."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states, text_embeds, time_ids):
        added = {"text_embeds": text_embeds, "time_ids": time_ids}
        return self.unet(sample, timestep, encoder_hidden_states, added_cond_kwargs=added, return_dict=False)[0]


class _VaeEncoder(torch.nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, sample):
        return self.vae.encode(sample).latent_dist.parameters


class _VaeDecoder(torch.nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, latent_sample):
        return self.vae.decode(latent_sample).sample


def _export(module, args, path: Path, inputs, outputs, axes, opset: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript exporter deprecation and tracer warnings
        torch.onnx.export(
            module, args, path.as_posix(), input_names=inputs, output_names=outputs, dynamic_axes=axes,
            do_constant_folding=True, opset_version=opset, dynamo=False,
        )


def _to_external_data(path: Path) -> None:
    model = onnx.load(path.as_posix())
    for extra in path.parent.iterdir():
        if extra.name != path.name:
            extra.unlink()
    onnx.save_model(model, path.as_posix(), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=UNET_EXTERNAL_DATA, size_threshold=1024, convert_attribute=False)


def _to_fp16(path: Path, external: bool) -> None:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(path.as_posix())
    converted = convert_float_to_float16(model, keep_io_types=False, op_block_list=[])
    for extra in path.parent.iterdir():
        if extra.suffix != ".json":
            extra.unlink()
    if external:
        onnx.save_model(converted, path.as_posix(), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=UNET_EXTERNAL_DATA, size_threshold=1024, convert_attribute=False)
    else:
        onnx.save_model(converted, path.as_posix())


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=list) + "\n", encoding="utf-8")


def _check(path: Path, module, feeds: dict[str, np.ndarray], torch_args: tuple, name: str) -> float:
    session = ort.InferenceSession(path.as_posix(), providers=["CPUExecutionProvider"])
    got = session.run(None, feeds)[0]
    with torch.no_grad():
        want = module(*torch_args)
    want = (want[0] if isinstance(want, tuple) else want).numpy()
    scale = max(1.0, float(np.abs(want).max()))
    diff = float(np.abs(got.astype(np.float32) - want).max()) / scale
    if diff > FP32_TOLERANCE:
        raise ConversionError(f"{name}: ONNX and torch differ by {diff:.3g} (relative), more than {FP32_TOLERANCE}")
    return diff


def _export_text_encoder(model, part: str, out: Path, ids: torch.Tensor, opset: int, sdxl: bool):
    """One text encoder: (wrapper, path, export_model_type). SD: last_hidden_state, pooler_output; SDXL: all
    hidden states too (encoder 2 with its projection first, as text_embeds)."""
    seq_axes = {0: "batch_size", 1: "sequence_length"}
    path = out / part / "model.onnx"
    if not sdxl:
        wrapper, heads, kind = _TextEncoder(model), ["last_hidden_state", "pooler_output"], "clip-text"
        axes = {"last_hidden_state": dict(seq_axes), "pooler_output": {0: "batch_size"}}
    elif part == "text_encoder_2":
        # optimum labels text_embeds' dim 1 sequence_length too (it is the projection width).
        wrapper, heads, kind = _TextEncoderWithProjectionHidden(model), ["text_embeds", "last_hidden_state"], "clip-text-with-projection"
        axes = {"text_embeds": dict(seq_axes), "last_hidden_state": dict(seq_axes)}
    else:
        wrapper, heads, kind = _TextEncoderHidden(model), ["last_hidden_state", "pooler_output"], "clip-text"
        axes = {"last_hidden_state": dict(seq_axes), "pooler_output": {0: "batch_size"}}
    hidden = [f"hidden_states.{i}" for i in range(model.config.num_hidden_layers + 1)] if sdxl else []
    axes.update({name: dict(seq_axes) for name in hidden})
    _export(wrapper, (ids,), path, ["input_ids"], heads + hidden, {"input_ids": dict(seq_axes), **axes}, opset)
    config = {**model.config.to_dict(), "export_model_type": kind}
    if sdxl:
        config["architectures"] = [type(model).__name__]
    _write_json(out / part / "config.json", config)
    return wrapper, path


@torch.no_grad()
def export_model(src: SourceModel, out: Path, opset: int = DEFAULT_OPSET, fp16: bool = False, check: bool = True) -> dict:
    """Writes the folder; returns a report (what was written and the torch-vs-ONNX differences)."""
    generator = torch.Generator().manual_seed(0)
    unet, vae = src.unet.eval().float(), src.vae.eval().float()
    report: dict = {"opset": opset, "fp16": fp16, "sdxl": src.sdxl, "max_relative_diff": {}}

    # text encoders (CLIPTextOnnxConfig / CLIPTextWithProjectionOnnxConfig, int64 ids)
    encoders = [(name, model.eval().float()) for name, model in (("text_encoder", src.text_encoder), ("text_encoder_2", src.text_encoder_2)) if model is not None]
    texts = []
    for name, model in encoders:
        ids = torch.randint(0, model.config.vocab_size, (DUMMY_BATCH, DUMMY_SEQUENCE), generator=generator, dtype=torch.int64)
        wrapper, path = _export_text_encoder(model, name, out, ids, opset, src.sdxl)
        texts.append((name, wrapper, path, ids))

    # unet (UNetOnnxConfig)
    size = int(unet.config.sample_size or 64)
    unet_args = [
        torch.randn(DUMMY_BATCH, unet.config.in_channels, size, size, generator=generator),
        torch.tensor(500.0),
        torch.randn(DUMMY_BATCH, DUMMY_SEQUENCE, unet.config.cross_attention_dim, generator=generator),
    ]
    unet_inputs = ["sample", "timestep", "encoder_hidden_states"]
    unet_axes = {"sample": {0: "batch_size", 2: "height", 3: "width"}, "timestep": {},
                 "encoder_hidden_states": {0: "batch_size", 1: "sequence_length"}}
    if unet.config.addition_embed_type == "text_time":
        if src.text_encoder_2 is None:
            raise ConversionError("the U-Net takes SDXL's text_embeds and time_ids but the model has no text_encoder_2")
        pooled = src.text_encoder_2.config.projection_dim
        time_ids = (unet.config.projection_class_embeddings_input_dim - pooled) // unet.config.addition_time_embed_dim
        # original size, crop top-left, target size (or the refiner's aesthetic score): sizes in pixels.
        unet_args += [torch.randn(DUMMY_BATCH, pooled, generator=generator), torch.rand(DUMMY_BATCH, time_ids, generator=generator) * 1024]
        unet_inputs += ["text_embeds", "time_ids"]
        unet_axes.update({"text_embeds": {0: "batch_size"}, "time_ids": {0: "batch_size"}})
        unet_module = _SdxlUNet(unet)
    else:
        if src.sdxl:
            raise ConversionError("the model has SDXL's two text encoders but its U-Net takes no text_embeds/time_ids (addition_embed_type)")
        unet_module = _UNet(unet)
    if unet.config.time_cond_proj_dim is not None:
        if src.sdxl:
            raise ConversionError("SDXL U-Nets with timestep_cond (LCM distilled) are not supported; use an LCM-LoRA at run time")
        unet_args.append(torch.randn(DUMMY_BATCH, unet.config.time_cond_proj_dim, generator=generator))
        unet_inputs.append("timestep_cond")
        unet_axes["timestep_cond"] = {0: "batch_size"}
    unet_axes["out_sample"] = {0: "batch_size", 2: "height", 3: "width"}
    unet_path = out / "unet" / "model.onnx"
    _export(unet_module, tuple(unet_args), unet_path, unet_inputs, ["out_sample"], unet_axes, opset)
    _to_external_data(unet_path)
    _write_json(out / "unet" / "config.json", dict(unet.config))

    # vae_encoder / vae_decoder (VaeEncoderOnnxConfig / VaeDecoderOnnxConfig)
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    image = torch.randn(1, vae.config.in_channels, 8 * factor, 8 * factor, generator=generator)
    latent = torch.randn(1, vae.config.latent_channels, 8, 8, generator=generator)
    encoder, decoder = _VaeEncoder(copy.deepcopy(vae)), _VaeDecoder(copy.deepcopy(vae))
    enc_path, dec_path = out / "vae_encoder" / "model.onnx", out / "vae_decoder" / "model.onnx"
    _export(encoder, (image,), enc_path, ["sample"], ["latent_parameters"],
            {"sample": {0: "batch_size", 2: "sample_height", 3: "sample_width"},
             "latent_parameters": {0: "batch_size", 2: f"sample_height / {factor}", 3: f"sample_width / {factor}"}}, opset)
    _export(decoder, (latent,), dec_path, ["latent_sample"], ["sample"],
            {"latent_sample": {0: "batch_size", 2: "latent_height", 3: "latent_width"},
             "sample": {0: "batch_size", 2: f"latent_height * {factor}", 3: f"latent_width * {factor}"}}, opset)
    for part in ("vae_encoder", "vae_decoder"):
        _write_json(out / part / "config.json", dict(vae.config))

    if check:
        diffs = report["max_relative_diff"]
        for name, wrapper, path, ids in texts:
            diffs[name] = _check(path, wrapper, {"input_ids": ids.numpy()}, (ids,), name)
        feeds = {name: t.numpy() for name, t in zip(unet_inputs, unet_args, strict=True)}
        diffs["unet"] = _check(unet_path, unet_module, feeds, tuple(unet_args), "unet")
        diffs["vae_encoder"] = _check(enc_path, encoder, {"sample": image.numpy()}, (image,), "vae_encoder")
        diffs["vae_decoder"] = _check(dec_path, decoder, {"latent_sample": latent.numpy()}, (latent,), "vae_decoder")

    if fp16:
        for _, _, path, _ in texts:
            _to_fp16(path, external=False)
        _to_fp16(unet_path, external=True)
        if not vae.config.get("force_upcast", False):
            _to_fp16(enc_path, external=False)

    tokenizers = [("tokenizer", src.tokenizer), ("tokenizer_2", src.tokenizer_2)]
    for name, tokenizer in tokenizers:
        if tokenizer is not None:
            write_tokenizer_folder(tokenizer, out / name, src.tokenizers_root / name if src.tokenizers_root else None)
    src.scheduler.save_pretrained(out / "scheduler")
    scheduler_class = type(src.scheduler).__name__
    import diffusers

    if src.sdxl:
        index = {
            "_class_name": src.pipeline_class,
            "_diffusers_version": diffusers.__version__,
            "feature_extractor": [None, None],
            "image_encoder": [None, None],
            **(src.pipeline_config or {}),
            "scheduler": ["diffusers", scheduler_class],
            "text_encoder": ["transformers", "CLIPTextModel"] if src.text_encoder is not None else [None, None],
            "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
            "tokenizer": ["transformers", "CLIPTokenizer"] if src.tokenizer is not None else [None, None],
            "tokenizer_2": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        }
    else:
        index = {
            "_class_name": src.pipeline_class if src.pipeline_class.endswith("Pipeline") else "StableDiffusionPipeline",
            "_diffusers_version": diffusers.__version__,
            "feature_extractor": [None, None],
            "requires_safety_checker": False,
            "safety_checker": [None, None],
            "scheduler": ["diffusers", scheduler_class],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        }
    _write_json(out / "model_index.json", index)
    report["files"] = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    return report
