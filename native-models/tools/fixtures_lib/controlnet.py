"""The ControlNet fixture: `models/tiny-controlnet/` and its parity reference.

Real ControlNet ONNX exports come from community scripts, not from one official exporter. This folder
copies their common shape (for example Amblyopius/Stable-Diffusion-ONNX-FP16, which is what most
"SD 1.5 + ControlNet ONNX" folders were made with):

* an optimum-style SD folder (like `tiny-optimum`: int64 `input_ids`, rank-0 float `timestep`,
  `config.json` per submodel) whose U-Net takes the ControlNet residuals as extra inputs
  `down_block_0` … `down_block_{N-1}` and `mid_block_additional_residual`;
* `controlnet/model.onnx`: diffusers `ControlNetModel.from_unet(unet)` at the same tiny config, with
  inputs `sample`, `timestep`, `encoder_hidden_states`, `controlnet_cond` ([B, 3, H, W] in [0, 1]) and
  `conditioning_scale` (rank-0 float), outputs `down_block_0` … `down_block_{N-1}` then
  `mid_block_res_sample`;
* `controlnet-noscale/model.onnx`: the same weights exported **without** `conditioning_scale` (the
  host must scale the residuals) and with the other common output names, `down_block_res_samples_{i}`
  and `mid_block_res_sample`.

`from_unet` starts the ControlNet's zero convolutions at zero (so a fresh ControlNet changes nothing);
here they get seeded random weights, scaled so the control visibly changes the image.

Parity: the torch `StableDiffusionControlNetPipeline` on the very modules that were exported, with
the saved initial latents and a committed segmentation-like colour map (ADE20K palette colours).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from diffusers import ControlNetModel, PNDMScheduler, StableDiffusionControlNetPipeline, StableDiffusionPipeline
from PIL import Image
from transformers import CLIPTokenizer

from .exporters import OPTIMUM_NEW, OPTIMUM_NEW_OPSET, _torchscript_export
from .folders import SD15_SCHEDULER_CONFIG, BuiltFolder, _optimum_folder, _resave_external
from .onnx_names import compact_internal_names
from .parity import LATENTS_FILE, _save_image, _stats, write_torch_case
from .tiny_models import IMAGE_SIZE, LATENT_SIZE, TEXT_MAX_POSITIONS, ModelSpec
from .tokenizer_files import EOS_TOKEN, TinyVocabulary
from .verify import session

FOLDER = "tiny-controlnet"
SEED = 6000
CONTROLNET_SUBFOLDER = "controlnet"
NOSCALE_SUBFOLDER = "controlnet-noscale"
# ControlNetModel default is (16, 32, 96, 256): ~0.3 M parameters in the conditioning embedding alone.
# Four entries keep its 8x downsampling (three stride-2 convs) to latent resolution.
CONDITIONING_EMBEDDING_CHANNELS = (8, 8, 16, 16)
# The zero convs get random weights at this fraction of their default (kaiming-uniform) init, so the
# control moves the image by several levels without saturating it (the effect is printed and checked).
ZERO_CONV_GAIN = 0.5
# With torch's default init, the conditioning embedding (8 small convs) shrinks the image-dependent part
# of its output ~3x per layer, and what reaches the ControlNet is mostly its biases: every control image
# gave the same result. Its convs are re-initialized variance-preserving (He normal, zero bias), and its
# output is scaled to this multiple of the std of the ControlNet's conv_in(sample) features it is added to.
CONDITIONING_EMBEDDING_GAIN = 1.0

# Parity case.
CONTROL_IMAGE_FILE = "controlnet-seg-map.png"
CASES_FILE = "controlnet-cases.json"
PROMPT = "a red apple"
NEGATIVE = ""
STEPS = 8
CFG = 7.5
CONTROL_SCALE = 0.8
REFERENCE_STEM = "tiny-controlnet-pndm"
# The control must move the image at least this much (mean |difference| in 8-bit levels, scale 1 vs no
# control), or the engine tests of "scale > 0 changes the image" would test little.
MIN_CONTROL_EFFECT = 2.0
# Nor may the result depend only on the presence of a control: the seg map vs a flat grey image must
# differ by at least this much (mean, 8-bit levels).
MIN_CONTENT_EFFECT = 1.0

# ADE20K (SceneParsing 150) palette entries used by the map: sky, building, tree, grass, road.
ADE20K_SKY = (6, 230, 230)
ADE20K_BUILDING = (180, 120, 120)
ADE20K_TREE = (4, 200, 3)
ADE20K_GRASS = (4, 250, 7)
ADE20K_ROAD = (140, 140, 140)


@dataclass
class ControlNetBuilt:
    folder: BuiltFolder
    controlnet: ControlNetModel


class _ControlUNet(torch.nn.Module):
    """The U-Net with the residual inputs, as the ControlNet-ready exports write it."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states, *residuals):
        *down, mid = residuals
        return self.unet(
            sample,
            timestep,
            encoder_hidden_states,
            down_block_additional_residuals=tuple(down),
            mid_block_additional_residual=mid,
            return_dict=False,
        )[0]


class _ControlNetWithScale(torch.nn.Module):
    def __init__(self, controlnet: ControlNetModel):
        super().__init__()
        self.controlnet = controlnet

    def forward(self, sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale):
        down, mid = self.controlnet(
            sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale=conditioning_scale, return_dict=False
        )
        return (*down, mid)


class _ControlNetNoScale(torch.nn.Module):
    def __init__(self, controlnet: ControlNetModel):
        super().__init__()
        self.controlnet = controlnet

    def forward(self, sample, timestep, encoder_hidden_states, controlnet_cond):
        down, mid = self.controlnet(sample, timestep, encoder_hidden_states, controlnet_cond, return_dict=False)
        return (*down, mid)


def _residual_shapes(controlnet: ControlNetModel, hidden: int) -> list[tuple[int, ...]]:
    with torch.no_grad():
        down, mid = controlnet(
            torch.zeros(1, 4, LATENT_SIZE, LATENT_SIZE),
            torch.tensor(1.0),
            torch.zeros(1, TEXT_MAX_POSITIONS, hidden),
            torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE),
            return_dict=False,
        )
    return [tuple(t.shape) for t in (*down, mid)]


def _save_compact(path: Path, external: bool) -> None:
    model = onnx.load(path.as_posix())
    for extra in [p for p in path.parent.iterdir() if p.name.startswith("model.onnx") and p.name != "model.onnx"]:
        extra.unlink()
    onnx.save_model(compact_internal_names(model), path.as_posix())
    if external:
        _resave_external(path, "model.onnx_data", convert_attribute=True, size_threshold=100)


@torch.no_grad()
def _build_controlnet(unet) -> ControlNetModel:
    torch.manual_seed(SEED + 20)
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=CONDITIONING_EMBEDDING_CHANNELS).eval()
    zero_convs = [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block, controlnet.controlnet_cond_embedding.conv_out]
    for conv in zero_convs:
        conv.reset_parameters()  # seeded kaiming-uniform, torch's Conv2d default
        conv.weight.mul_(ZERO_CONV_GAIN)
        conv.bias.mul_(ZERO_CONV_GAIN)
    embedding = controlnet.controlnet_cond_embedding
    for conv in [embedding.conv_in, *embedding.blocks, embedding.conv_out]:
        torch.nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
        torch.nn.init.zeros_(conv.bias)
    generator = torch.Generator().manual_seed(SEED + 21)
    image = torch.rand(2, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator)
    sample = torch.randn(2, 4, LATENT_SIZE, LATENT_SIZE, generator=generator)
    factor = CONDITIONING_EMBEDDING_GAIN * controlnet.conv_in(sample).std().item() / embedding(image).std().item()
    embedding.conv_out.weight.mul_(factor)
    return controlnet


@torch.no_grad()
def _export_unet(root: Path, unet, names: list[str], shapes: list[tuple[int, ...]], generator: torch.Generator) -> None:
    batch = 2
    hidden = unet.config.cross_attention_dim
    args = [
        torch.randn(batch, 4, LATENT_SIZE, LATENT_SIZE, generator=generator),
        torch.rand((), generator=generator) * 4,
        torch.randn(batch, 16, hidden, generator=generator),
        *[torch.randn(batch, *shape[1:], generator=generator) for shape in shapes],
    ]
    axes = {
        "sample": {0: "batch_size", 2: "height", 3: "width"},
        "timestep": {},
        "encoder_hidden_states": {0: "batch_size", 1: "sequence_length"},
        "out_sample": {0: "batch_size", 2: "height", 3: "width"},
    }
    for i, name in enumerate(names):
        axes[name] = {0: "batch_size", 2: f"residual_{i}_height", 3: f"residual_{i}_width"}
    path = root / "unet" / "model.onnx"
    for old in path.parent.glob("model.onnx*"):
        old.unlink()
    _torchscript_export(
        _ControlUNet(unet),
        tuple(args),
        path,
        ["sample", "timestep", "encoder_hidden_states", *names],
        ["out_sample"],
        axes,
        OPTIMUM_NEW_OPSET,
    )
    _save_compact(path, external=True)


@torch.no_grad()
def _export_controlnet(
    folder: Path, controlnet: ControlNetModel, with_scale: bool, down_names: list[str], mid_name: str, generator: torch.Generator
) -> None:
    batch = 2
    hidden = controlnet.config.cross_attention_dim
    args = [
        torch.randn(batch, 4, LATENT_SIZE, LATENT_SIZE, generator=generator),
        torch.rand((), generator=generator) * 4,
        torch.randn(batch, 16, hidden, generator=generator),
        torch.rand(batch, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator),
    ]
    inputs = ["sample", "timestep", "encoder_hidden_states", "controlnet_cond"]
    axes = {
        "sample": {0: "batch_size", 2: "height", 3: "width"},
        "timestep": {},
        "encoder_hidden_states": {0: "batch_size", 1: "sequence_length"},
        "controlnet_cond": {0: "batch_size", 2: "image_height", 3: "image_width"},
    }
    if with_scale:
        args.append(torch.tensor(1.0))
        inputs.append("conditioning_scale")
        axes["conditioning_scale"] = {}
    outputs = [*down_names, mid_name]
    for i, name in enumerate(outputs):
        axes[name] = {0: "batch_size", 2: f"residual_{i}_height", 3: f"residual_{i}_width"}
    wrapper = _ControlNetWithScale(controlnet) if with_scale else _ControlNetNoScale(controlnet)
    path = folder / "model.onnx"
    _torchscript_export(wrapper, tuple(args), path, inputs, outputs, axes, OPTIMUM_NEW_OPSET)
    _save_compact(path, external=False)
    controlnet.save_config(folder)


def build_controlnet_folder(out: Path, vocab: TinyVocabulary) -> ControlNetBuilt:
    folder = _optimum_folder(
        FOLDER,
        out,
        vocab,
        ModelSpec(seed=SEED),
        OPTIMUM_NEW,
        OPTIMUM_NEW_OPSET,
        PNDMScheduler.from_config(SD15_SCHEDULER_CONFIG),
        EOS_TOKEN,
        StableDiffusionPipeline,
    )
    models = folder.models
    controlnet = _build_controlnet(models.unet)
    hidden = models.text_encoder.config.hidden_size
    shapes = _residual_shapes(controlnet, hidden)
    count = len(shapes) - 1
    generator = torch.Generator().manual_seed(SEED + 30)
    _export_unet(folder.root, models.unet, [*(f"down_block_{i}" for i in range(count)), "mid_block_additional_residual"], shapes, generator)
    models.unet.save_config(folder.root / "unet")  # the re-save above leaves only the ONNX files
    _export_controlnet(
        folder.root / CONTROLNET_SUBFOLDER,
        controlnet,
        True,
        [f"down_block_{i}" for i in range(count)],
        "mid_block_res_sample",
        generator,
    )
    _export_controlnet(
        folder.root / NOSCALE_SUBFOLDER,
        controlnet,
        False,
        [f"down_block_res_samples_{i}" for i in range(count)],
        "mid_block_res_sample",
        generator,
    )
    # model_index.json of the torch ControlNet pipeline (it names the controlnet component).
    pipeline = _torch_pipeline(ControlNetBuilt(folder, controlnet))
    pipeline.save_config(folder.root)
    folder.pipeline_class = StableDiffusionControlNetPipeline.__name__
    built = ControlNetBuilt(folder, controlnet)
    check_controlnet_folder(built, shapes)
    return built


def _torch_pipeline(built: ControlNetBuilt) -> StableDiffusionControlNetPipeline:
    models = built.folder.models
    scheduler_config = json.loads((built.folder.root / "scheduler" / "scheduler_config.json").read_text())
    pipe = StableDiffusionControlNetPipeline(
        vae=models.vae,
        text_encoder=models.text_encoder,
        tokenizer=CLIPTokenizer.from_pretrained(built.folder.root / "tokenizer"),
        unet=models.unet,
        controlnet=built.controlnet,
        scheduler=PNDMScheduler.from_config(scheduler_config),
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def check_controlnet_folder(built: ControlNetBuilt, shapes: list[tuple[int, ...]]) -> None:
    """ONNX vs torch for the U-Net with residuals and both ControlNet exports."""
    root = built.folder.root
    models = built.folder.models
    rng = np.random.default_rng(SEED)
    hidden = models.text_encoder.config.hidden_size
    sample = rng.standard_normal((2, 4, LATENT_SIZE, LATENT_SIZE)).astype(np.float32)
    states = rng.standard_normal((2, TEXT_MAX_POSITIONS, hidden)).astype(np.float32)
    cond = rng.random((2, 3, IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)
    t = np.array(321.0, dtype=np.float32)
    scale = np.array(0.7, dtype=np.float32)
    with torch.no_grad():
        down, mid = built.controlnet(
            torch.from_numpy(sample), torch.from_numpy(t), torch.from_numpy(states), torch.from_numpy(cond), 0.7, return_dict=False
        )
        expected_residuals = [x.numpy() for x in (*down, mid)]
        expected = models.unet(
            torch.from_numpy(sample),
            torch.from_numpy(t),
            torch.from_numpy(states),
            down_block_additional_residuals=tuple(down),
            mid_block_additional_residual=mid,
        ).sample.numpy()
    feeds = {"sample": sample, "timestep": t, "encoder_hidden_states": states, "controlnet_cond": cond}
    with_scale = session(root / CONTROLNET_SUBFOLDER / "model.onnx").run(None, {**feeds, "conditioning_scale": scale})
    no_scale = session(root / NOSCALE_SUBFOLDER / "model.onnx").run(None, feeds)
    no_scale = [x * scale for x in no_scale]
    worst = max(float(np.abs(a - b).max()) for a, b in zip(with_scale, expected_residuals, strict=True))
    worst_noscale = max(float(np.abs(a - b).max()) for a, b in zip(no_scale, expected_residuals, strict=True))
    unet = session(root / "unet" / "model.onnx")
    names = [a.name for a in unet.get_inputs()][3:]
    out = unet.run(None, {"sample": sample, "timestep": t, "encoder_hidden_states": states, **dict(zip(names, with_scale, strict=True))})[0]
    unet_diff = float(np.abs(out - expected).max())
    print(
        f"check {FOLDER}: residuals {[list(s[1:]) for s in shapes]}; ONNX vs torch max |diff|: controlnet {worst:.1e}, "
        f"controlnet-noscale (scaled on the host) {worst_noscale:.1e}, unet {unet_diff:.1e}"
    )
    if max(worst, worst_noscale, unet_diff) > 1e-4:
        raise AssertionError(f"{FOLDER}: ONNX and torch disagree")


def seg_map() -> Image.Image:
    """A 64x64 scene layout in ADE20K colours: sky, a building, a tree, grass and a road."""
    image = np.zeros((IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    image[:] = ADE20K_SKY
    image[28:, :] = ADE20K_GRASS
    image[44:54, :] = ADE20K_ROAD
    image[10:44, 6:26] = ADE20K_BUILDING
    yy, xx = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
    image[(yy - 22) ** 2 + (xx - 46) ** 2 < 11**2] = ADE20K_TREE
    return Image.fromarray(image)


@torch.no_grad()
def make_controlnet_parity(built: ControlNetBuilt, parity: Path, fixtures_root: Path) -> list[dict]:
    """Writes the control image, the reference PNG + float image and controlnet-cases.json."""
    control = seg_map()
    control.save(parity / CONTROL_IMAGE_FILE, optimize=False)
    control = Image.open(parity / CONTROL_IMAGE_FILE).convert("RGB")
    latents = np.load(parity / LATENTS_FILE)
    pipe = _torch_pipeline(built)

    def run(scale: float, image: Image.Image = control) -> np.ndarray:
        return pipe(
            prompt=PROMPT,
            negative_prompt=NEGATIVE,
            image=image,
            height=IMAGE_SIZE,
            width=IMAGE_SIZE,
            num_inference_steps=STEPS,
            guidance_scale=CFG,
            controlnet_conditioning_scale=scale,
            latents=torch.from_numpy(latents.copy()),
            output_type="np",
        ).images[0]

    image = run(CONTROL_SCALE)
    png, npy = _save_image(parity, REFERENCE_STEM, image)
    with_map = run(1.0)
    effect = float(np.abs(with_map * 255 - run(0.0) * 255).mean())
    content = float(np.abs(with_map * 255 - run(1.0, Image.new("RGB", control.size, (128, 128, 128))) * 255).mean())
    print(
        f"parity {REFERENCE_STEM:28s} {_stats(image)}; control effect (scale 1 vs 0): mean {effect:.1f}/255, "
        f"seg map vs flat grey: mean {content:.1f}/255"
    )
    if effect < MIN_CONTROL_EFFECT:
        raise AssertionError(f"{FOLDER}: the control barely changes the image ({effect:.2f}/255)")
    if content < MIN_CONTENT_EFFECT:
        raise AssertionError(f"{FOLDER}: the control image's content barely matters ({content:.2f}/255)")
    return write_torch_case(
        parity / CASES_FILE,
        name=REFERENCE_STEM,
        model=built.folder.root.relative_to(fixtures_root).as_posix(),
        pipeline="diffusers StableDiffusionControlNetPipeline (torch, the weights exported to the folder)",
        prompt=PROMPT,
        negative=NEGATIVE,
        steps=STEPS,
        cfg=CFG,
        sampler="pndm",
        inputs={"control_image": CONTROL_IMAGE_FILE, "control_scale": CONTROL_SCALE, "controlnet": CONTROLNET_SUBFOLDER},
        reference=(png, npy),
        tokenizer=pipe.tokenizer,
        scheduler=pipe.scheduler,
    )

