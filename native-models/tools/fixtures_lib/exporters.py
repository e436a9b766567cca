"""Export tiny torch modules the way real Stable Diffusion ONNX folders were produced.

Two producers are imitated (see /work/shared/docs/sd-onnx-reference.md §1-2):

* `export_diffusers_script`: diffusers `scripts/convert_stable_diffusion_checkpoint_to_onnx.py`
  (same module wrappers, dummy inputs, names, dynamic axes, opset 14 default, UNet external data
  re-saved to `weights.pb` with `convert_attribute=False`).
* `export_optimum`: `optimum-cli export onnx` (optimum-onnx `convert.py` +
  `_get_submodels_for_export_diffusion` + the `*OnnxConfig` classes of `model_configs.py`), in two
  generations: "1.24" (int64 ids, rank-0 float timestep, `latent_parameters`) and "pre-1.23"
  (int64 [steps] timestep, `latent_sample`). The UNet external data goes to `model.onnx_data`
  (`size_threshold=100`, `convert_attribute=True`).

Both use the TorchScript exporter (`dynamo=False`), which is what both producers used.
"""

from __future__ import annotations

import copy
import os
import shutil
import warnings
from pathlib import Path

import onnx
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextModel

from .tiny_models import IMAGE_SIZE

# diffusers src/diffusers/utils/constants.py
ONNX_WEIGHTS_NAME = "model.onnx"
ONNX_EXTERNAL_WEIGHTS_NAME = "weights.pb"
DIFFUSERS_SCRIPT_DEFAULT_OPSET = 14  # convert script `--opset` default
# optimum < 1.23 pinned opset 14 for the SD configs ("needs the Trilu operator support, available
# since opset 14"); current optimum defaults to 18, newer than the 14-17 range the engine targets.
OPTIMUM_OLD_OPSET = 14
OPTIMUM_NEW_OPSET = 17
# optimum DEFAULT_DUMMY_SHAPES
OPTIMUM_DUMMY_BATCH = 2
OPTIMUM_DUMMY_SEQUENCE = 16
OPTIMUM_EXTERNAL_DATA_SIZE_THRESHOLD = 100


def _torchscript_export(model, args, path: Path, input_names, output_names, dynamic_axes, opset: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in torch 2.9+, and tracing warns about Python
        # control flow on shapes; both are expected here.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            args,
            path.as_posix(),
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            do_constant_folding=True,
            opset_version=opset,
            dynamo=False,
        )


# --------------------------------------------------------------------------------------------------
# diffusers convert script


@torch.no_grad()
def export_diffusers_script(
    root: Path,
    text_encoder: CLIPTextModel,
    unet: UNet2DConditionModel,
    vae: AutoencoderKL,
    dummy_input_ids: torch.Tensor,
    opset: int = DIFFUSERS_SCRIPT_DEFAULT_OPSET,
) -> None:
    """`dummy_input_ids`: the tokenizer output for "A sample prompt" padded to 77, as the script uses."""
    num_tokens = text_encoder.config.max_position_embeddings
    text_hidden_size = text_encoder.config.hidden_size
    # casting to int32 "until the CLIP fix is released" (transformers#18515), as the script does
    _torchscript_export(
        text_encoder,
        (dummy_input_ids.to(torch.int32)),
        root / "text_encoder" / ONNX_WEIGHTS_NAME,
        ["input_ids"],
        ["last_hidden_state", "pooler_output"],
        {"input_ids": {0: "batch", 1: "sequence"}},
        opset,
    )

    unet_in_channels = unet.config.in_channels
    unet_sample_size = unet.config.sample_size
    unet_path = root / "unet" / ONNX_WEIGHTS_NAME
    _torchscript_export(
        unet,
        (
            torch.randn(2, unet_in_channels, unet_sample_size, unet_sample_size),
            torch.randn(2),
            torch.randn(2, num_tokens, text_hidden_size),
            False,
        ),
        unet_path,
        ["sample", "timestep", "encoder_hidden_states", "return_dict"],
        ["out_sample"],  # "has to be different from "sample" for correct tracing"
        {
            "sample": {0: "batch", 1: "channels", 2: "height", 3: "width"},
            "timestep": {0: "batch"},
            "encoder_hidden_states": {0: "batch", 1: "sequence"},
        },
        opset,
    )
    # The script reloads the UNet, wipes its folder and re-saves all tensors into one file.
    unet_model = onnx.load(unet_path.as_posix())
    shutil.rmtree(unet_path.parent)
    os.mkdir(unet_path.parent)
    onnx.save_model(
        unet_model,
        unet_path.as_posix(),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=ONNX_EXTERNAL_WEIGHTS_NAME,
        convert_attribute=False,
    )

    vae_encoder = copy.deepcopy(vae)
    vae_sample_size = vae_encoder.config.sample_size
    # "need to get the raw tensor output (sample) from the encoder": the Gaussian sampling is in the graph
    vae_encoder.forward = lambda sample, return_dict: vae_encoder.encode(sample, return_dict)[0].sample()
    _torchscript_export(
        vae_encoder,
        (torch.randn(1, vae_encoder.config.in_channels, vae_sample_size, vae_sample_size), False),
        root / "vae_encoder" / ONNX_WEIGHTS_NAME,
        ["sample", "return_dict"],
        ["latent_sample"],
        {"sample": {0: "batch", 1: "channels", 2: "height", 3: "width"}},
        opset,
    )

    vae_decoder = copy.deepcopy(vae)
    vae_decoder.forward = vae_decoder.decode
    _torchscript_export(
        vae_decoder,
        (torch.randn(1, vae_decoder.config.latent_channels, unet_sample_size, unet_sample_size), False),
        root / "vae_decoder" / ONNX_WEIGHTS_NAME,
        ["latent_sample", "return_dict"],
        ["sample"],
        {"latent_sample": {0: "batch", 1: "channels", 2: "height", 3: "width"}},
        opset,
    )


# --------------------------------------------------------------------------------------------------
# optimum

OPTIMUM_NEW = "1.24"  # optimum >= 1.24.0: scalar float timestep, latent_parameters
OPTIMUM_OLD = "pre-1.23"  # optimum < 1.23: int64 [steps] timestep, latent_sample


class _OptimumUNet(torch.nn.Module):
    """optimum's ModelPatcher keeps the outputs named in the OnnxConfig and renames `sample` to
    `out_sample`; the forward arguments are passed by name in signature order."""

    def __init__(self, unet: UNet2DConditionModel):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states, timestep_cond=None):
        return self.unet(sample, timestep, encoder_hidden_states, timestep_cond=timestep_cond, return_dict=False)[0]


class _OptimumTextEncoder(torch.nn.Module):
    def __init__(self, text_encoder: CLIPTextModel):
        super().__init__()
        self.text_encoder = text_encoder

    def forward(self, input_ids):
        out = self.text_encoder(input_ids=input_ids)
        return out.last_hidden_state, out.pooler_output


def _save_optimum_external_data(path: Path) -> None:
    """optimum's `export_pytorch` re-saves a model that uses external data (UNets > 2 GB) into one file
    named `<model>.onnx_data`. The tiny UNet is small, so this is forced here (optimum's
    FORCE_ONNX_EXTERNAL_DATA does the same) to reproduce the real layout."""
    model = onnx.load(path.as_posix())
    onnx.save(
        model,
        path.as_posix(),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=path.name + "_data",
        convert_attribute=True,
        size_threshold=OPTIMUM_EXTERNAL_DATA_SIZE_THRESHOLD,
    )


@torch.no_grad()
def export_optimum(
    root: Path,
    text_encoder: CLIPTextModel,
    unet: UNet2DConditionModel,
    vae: AutoencoderKL,
    generation: str,
    opset: int,
    generator: torch.Generator,
) -> None:
    if generation not in (OPTIMUM_NEW, OPTIMUM_OLD):
        raise ValueError(f"unknown optimum generation {generation!r}")
    batch, seq = OPTIMUM_DUMMY_BATCH, OPTIMUM_DUMMY_SEQUENCE
    vocab_size = text_encoder.config.vocab_size

    # text_encoder: CLIPTextOnnxConfig ("clip-text"), int_dtype int64
    _torchscript_export(
        _OptimumTextEncoder(text_encoder),
        (torch.randint(0, vocab_size, (batch, seq), generator=generator, dtype=torch.int64),),
        root / "text_encoder" / ONNX_WEIGHTS_NAME,
        ["input_ids"],
        ["last_hidden_state", "pooler_output"],
        {
            "input_ids": {0: "batch_size", 1: "sequence_length"},
            "last_hidden_state": {0: "batch_size", 1: "sequence_length"},
            "pooler_output": {0: "batch_size"},
        },
        opset,
    )

    # unet: UNetOnnxConfig
    size = unet.config.sample_size
    norm_groups = unet.config.norm_num_groups  # optimum's dummy timestep max_value ("vocab_size")
    args = [
        torch.randn(batch, unet.config.in_channels, size, size, generator=generator),
        (
            torch.rand((), generator=generator) * norm_groups
            if generation == OPTIMUM_NEW
            else torch.randint(0, norm_groups, (batch,), generator=generator, dtype=torch.int64)
        ),
        torch.randn(batch, seq, unet.config.cross_attention_dim, generator=generator),
    ]
    input_names = ["sample", "timestep", "encoder_hidden_states"]
    dynamic_axes = {
        "sample": {0: "batch_size", 2: "height", 3: "width"},
        "timestep": {} if generation == OPTIMUM_NEW else {0: "steps"},
        "encoder_hidden_states": {0: "batch_size", 1: "sequence_length"},
    }
    if unet.config.time_cond_proj_dim is not None:
        args.append(torch.randn(batch, unet.config.time_cond_proj_dim, generator=generator))
        input_names.append("timestep_cond")
        dynamic_axes["timestep_cond"] = {0: "batch_size"}
    dynamic_axes["out_sample"] = {0: "batch_size", 2: "height", 3: "width"}
    unet_path = root / "unet" / ONNX_WEIGHTS_NAME
    _torchscript_export(_OptimumUNet(unet), tuple(args), unet_path, input_names, ["out_sample"], dynamic_axes, opset)
    _save_optimum_external_data(unet_path)
    export_optimum_vae(root, vae, generation, opset, generator, batch)


@torch.no_grad()
def export_optimum_vae(root: Path, vae: AutoencoderKL, generation: str, opset: int, generator: torch.Generator, batch: int) -> None:
    """vae_encoder and vae_decoder as optimum exports them (VaeEncoderOnnxConfig, VaeDecoderOnnxConfig)."""
    # vae_encoder: VaeEncoderOnnxConfig
    factor = 2 ** (len(vae.config.down_block_types) - 1)
    vae_encoder = copy.deepcopy(vae)
    if generation == OPTIMUM_NEW:
        vae_encoder.forward = lambda sample: {"latent_parameters": vae_encoder.encode(x=sample)["latent_dist"].parameters}
        encoder_output = "latent_parameters"
        encoder_axes = {
            "sample": {0: "batch_size", 2: "sample_height", 3: "sample_width"},
            "latent_parameters": {0: "batch_size", 2: f"sample_height / {factor}", 3: f"sample_width / {factor}"},
        }
    else:
        vae_encoder.forward = lambda sample: {"latent_sample": vae_encoder.encode(x=sample)["latent_dist"].sample()}
        encoder_output = "latent_sample"
        encoder_axes = {
            "sample": {0: "batch_size", 2: "height", 3: "width"},
            "latent_sample": {0: "batch_size", 2: "height_latent", 3: "width_latent"},
        }
    _torchscript_export(
        vae_encoder,
        (torch.randn(batch, vae.config.in_channels, IMAGE_SIZE, IMAGE_SIZE, generator=generator),),
        root / "vae_encoder" / ONNX_WEIGHTS_NAME,
        ["sample"],
        [encoder_output],
        encoder_axes,
        opset,
    )

    # vae_decoder: VaeDecoderOnnxConfig
    vae_decoder = copy.deepcopy(vae)
    vae_decoder.forward = lambda latent_sample: vae_decoder.decode(z=latent_sample)
    if generation == OPTIMUM_NEW:
        decoder_axes = {
            "latent_sample": {0: "batch_size", 2: "latent_height", 3: "latent_width"},
            "sample": {0: "batch_size", 2: f"latent_height * {factor}", 3: f"latent_width * {factor}"},
        }
    else:
        decoder_axes = {
            "latent_sample": {0: "batch_size", 2: "height_latent", 3: "width_latent"},
            "sample": {0: "batch_size", 2: "height", 3: "width"},
        }
    latent = IMAGE_SIZE // factor
    _torchscript_export(
        vae_decoder,
        (torch.randn(batch, vae.config.latent_channels, latent, latent, generator=generator),),
        root / "vae_decoder" / ONNX_WEIGHTS_NAME,
        ["latent_sample"],
        ["sample"],
        decoder_axes,
        opset,
    )


