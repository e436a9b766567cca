"""The layout (semantic synthesis) fixture: `models/tiny-sd1-layout/` and its parity reference.

A layout model is a text-to-image folder whose U-Net takes one more input, `label_map` float32
[batch, K, h, w] (h, w = latent size), and concatenates it to `sample` inside the graph, so its
conv_in takes 4 + K channels. This is the wrapper the real export uses (native-models/training), so
the folder has the same I/O as `native-models/emoji-ldm-layout/`:

* an optimum-style folder (like `tiny-optimum`: int64 `input_ids`, rank-0 float `timestep`,
  `config.json` per submodel; `unet/config.json` is the inner diffusers U-Net's, `in_channels` 4 + K);
* `unet/model.onnx`: `LayoutUNet.forward(sample, timestep, encoder_hidden_states, label_map)`;
* `labels.json` at the root: the K labels with their display colours (format `latent-studio-labels/1`).

A label map crosses the contract as an RGB PNG at the picture's size. The engine maps each pixel to
the nearest palette colour (squared RGB distance, ties → lower id), one-hot encodes it and averages
each VAE-factor block: `label_tensor` below is that rule, used for the parity reference.

Parity: a plain torch loop (diffusers PNDMScheduler from the folder's config, classifier-free guidance
with the same label map in both halves) on the very modules that were exported, from the saved
initial latents and a committed 64×64 label map whose regions do not line up with the 8×8 latent
cells (so the area average is exercised).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from diffusers import PNDMScheduler, StableDiffusionPipeline
from PIL import Image
from transformers import CLIPTokenizer

from .exporters import OPTIMUM_NEW, OPTIMUM_NEW_OPSET, _torchscript_export
from .folders import SD15_SCHEDULER_CONFIG, BuiltFolder, _optimum_folder, _resave_external
from .onnx_names import compact_internal_names
from .parity import LATENTS_FILE, _save_image, _stats, _token_ids, write_torch_case
from .tiny_models import IMAGE_SIZE, LATENT_CHANNELS, LATENT_SIZE, TEXT_MAX_POSITIONS, ModelSpec, UNetSpec
from .tokenizer_files import EOS_TOKEN, TinyVocabulary
from .verify import session

FOLDER = "tiny-sd1-layout"
SEED = 7000
LABELS_FILE = "labels.json"
LABELS_FORMAT = "latent-studio-labels/1"
# K = 4: background, outline and two fills, the shape of an emoji's label set.
LABELS = [
    {"id": 0, "name": "background", "color": [255, 255, 255]},
    {"id": 1, "name": "outline", "color": [0, 0, 0]},
    {"id": 2, "name": "skin", "color": [255, 204, 77]},
    {"id": 3, "name": "accent", "color": [221, 46, 68]},
]
VAE_FACTOR = IMAGE_SIZE // LATENT_SIZE

# Parity case.
LABEL_MAP_FILE = "layout-label-map.png"
CASES_FILE = "layout-cases.json"
PROMPT = "a red apple"
NEGATIVE = ""
STEPS = 8
CFG = 7.5
REFERENCE_STEM = "tiny-sd1-layout-pndm"
# The map must move the image: the committed map vs an all-background map, mean |difference| in
# 8-bit levels, or the engine's "a different map gives a different picture" test would test little.
MIN_MAP_EFFECT = 2.0


class LayoutUNet(torch.nn.Module):
    """The layout U-Net as exported: the label map is concatenated to the latents inside the graph."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states, label_map):
        return self.unet(torch.cat([sample, label_map], dim=1), timestep, encoder_hidden_states, return_dict=False)[0]


def label_tensor(rgb: np.ndarray, labels: list[dict], factor: int) -> np.ndarray:
    """[H, W, 3] uint8 → float32 [1, K, H/f, W/f]: nearest palette colour (squared RGB distance, ties to
    the lower id: argmin takes the first), one-hot, mean over each f×f block."""
    palette = np.array([label["color"] for label in labels], dtype=np.int64)
    distance = ((rgb.astype(np.int64)[:, :, None, :] - palette[None, None]) ** 2).sum(-1)
    index = distance.argmin(-1)
    one_hot = np.eye(len(labels), dtype=np.float64)[index]  # [H, W, K]
    h, w = rgb.shape[0] // factor, rgb.shape[1] // factor
    pooled = one_hot.reshape(h, factor, w, factor, len(labels)).mean(axis=(1, 3))
    return pooled.transpose(2, 0, 1)[None].astype(np.float32)


def label_map_image() -> Image.Image:
    """64×64 in the label colours: a skin-coloured disc with an outline ring, an accent band, on white.
    Edges fall inside latent cells, so many cells are mixtures."""
    colors = {label["name"]: tuple(label["color"]) for label in LABELS}
    image = np.zeros((IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    image[:] = colors["background"]
    yy, xx = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
    r2 = (yy - 30) ** 2 + (xx - 33) ** 2
    image[r2 < 25**2] = colors["outline"]
    image[r2 < 22**2] = colors["skin"]
    image[37:45, 19:47] = colors["accent"]
    return Image.fromarray(image)


@torch.no_grad()
def _export_unet(root: Path, unet, generator: torch.Generator) -> None:
    batch = 2
    k = len(LABELS)
    hidden = unet.config.cross_attention_dim
    args = (
        torch.randn(batch, LATENT_CHANNELS, LATENT_SIZE, LATENT_SIZE, generator=generator),
        torch.rand((), generator=generator) * 4,
        torch.randn(batch, 16, hidden, generator=generator),
        torch.rand(batch, k, LATENT_SIZE, LATENT_SIZE, generator=generator),
    )
    axes = {
        "sample": {0: "batch_size", 2: "height", 3: "width"},
        "timestep": {},
        "encoder_hidden_states": {0: "batch_size", 1: "sequence_length"},
        "label_map": {0: "batch_size", 2: "height", 3: "width"},
        "out_sample": {0: "batch_size", 2: "height", 3: "width"},
    }
    path = root / "unet" / "model.onnx"
    for old in path.parent.glob("model.onnx*"):
        old.unlink()
    _torchscript_export(
        LayoutUNet(unet),
        args,
        path,
        ["sample", "timestep", "encoder_hidden_states", "label_map"],
        ["out_sample"],
        axes,
        OPTIMUM_NEW_OPSET,
    )
    import onnx

    onnx.save_model(compact_internal_names(onnx.load(path.as_posix())), path.as_posix())
    _resave_external(path, "model.onnx_data", convert_attribute=True, size_threshold=100)


def build_layout_folder(out: Path, vocab: TinyVocabulary) -> BuiltFolder:
    spec = ModelSpec(seed=SEED, unet=UNetSpec(**{**UNetSpec().__dict__, "in_channels": LATENT_CHANNELS + len(LABELS)}))
    folder = _optimum_folder(
        FOLDER,
        out,
        vocab,
        spec,
        OPTIMUM_NEW,
        OPTIMUM_NEW_OPSET,
        PNDMScheduler.from_config(SD15_SCHEDULER_CONFIG),
        EOS_TOKEN,
        StableDiffusionPipeline,
    )
    _export_unet(folder.root, folder.models.unet, torch.Generator().manual_seed(SEED + 30))
    folder.models.unet.save_config(folder.root / "unet")  # the re-export above leaves only the ONNX files
    (folder.root / LABELS_FILE).write_text(
        json.dumps({"format": LABELS_FORMAT, "labels": LABELS}, indent=2) + "\n", encoding="utf-8"
    )
    check_layout_folder(folder)
    return folder


def check_layout_folder(folder: BuiltFolder) -> None:
    """The exported layout U-Net against the torch wrapper, and its I/O names."""
    unet = session(folder.root / "unet" / "model.onnx")
    names = [a.name for a in unet.get_inputs()]
    if names != ["sample", "timestep", "encoder_hidden_states", "label_map"]:
        raise AssertionError(f"{FOLDER}: U-Net inputs are {names}")
    label_shape = next(a.shape for a in unet.get_inputs() if a.name == "label_map")
    if label_shape[1] != len(LABELS):
        raise AssertionError(f"{FOLDER}: label_map channel dim is {label_shape[1]}, expected {len(LABELS)}")
    rng = np.random.default_rng(SEED)
    hidden = folder.models.text_encoder.config.hidden_size
    feeds = {
        "sample": rng.standard_normal((2, LATENT_CHANNELS, LATENT_SIZE, LATENT_SIZE)).astype(np.float32),
        "timestep": np.array(321.0, dtype=np.float32),
        "encoder_hidden_states": rng.standard_normal((2, TEXT_MAX_POSITIONS, hidden)).astype(np.float32),
        "label_map": rng.random((2, len(LABELS), LATENT_SIZE, LATENT_SIZE)).astype(np.float32),
    }
    with torch.no_grad():
        expected = LayoutUNet(folder.models.unet)(*(torch.from_numpy(v) for v in feeds.values())).numpy()
    diff = float(np.abs(unet.run(None, feeds)[0] - expected).max())
    print(f"check {FOLDER}: label_map {label_shape}; ONNX vs torch max |diff| {diff:.1e}")
    if diff > 1e-4:
        raise AssertionError(f"{FOLDER}: ONNX and torch disagree ({diff})")


@torch.no_grad()
def _run(folder: BuiltFolder, labels: np.ndarray, latents: np.ndarray) -> tuple[np.ndarray, PNDMScheduler, CLIPTokenizer]:
    """The reference loop: PNDM, classifier-free guidance ([uncond, cond], the same map in both halves)."""
    models = folder.models
    tokenizer = CLIPTokenizer.from_pretrained(folder.root / "tokenizer")
    scheduler_config = json.loads((folder.root / "scheduler" / "scheduler_config.json").read_text())
    scheduler = PNDMScheduler.from_config(scheduler_config)
    ids = torch.tensor([_token_ids(tokenizer, NEGATIVE), _token_ids(tokenizer, PROMPT)])
    states = models.text_encoder(ids).last_hidden_state
    label_map = torch.from_numpy(labels).repeat(2, 1, 1, 1)
    unet = LayoutUNet(models.unet)
    scheduler.set_timesteps(STEPS)
    z = torch.from_numpy(latents.copy()) * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        model_input = scheduler.scale_model_input(torch.cat([z] * 2), t)
        uncond, cond = unet(model_input, t, states, label_map).chunk(2)
        z = scheduler.step(uncond + CFG * (cond - uncond), t, z).prev_sample
    decoded = models.vae.decode(z / models.vae.config.scaling_factor).sample
    image = (decoded / 2 + 0.5).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    return image, scheduler, tokenizer


def make_layout_parity(folder: BuiltFolder, parity: Path, fixtures_root: Path) -> list[dict]:
    """Writes the label map, the reference PNG + float image and layout-cases.json."""
    label_map_image().save(parity / LABEL_MAP_FILE, optimize=False)
    rgb = np.asarray(Image.open(parity / LABEL_MAP_FILE).convert("RGB"))
    labels = label_tensor(rgb, LABELS, VAE_FACTOR)
    latents = np.load(parity / LATENTS_FILE)
    image, scheduler, tokenizer = _run(folder, labels, latents)
    png, npy = _save_image(parity, REFERENCE_STEM, image)
    flat = label_tensor(np.full_like(rgb, 255), LABELS, VAE_FACTOR)
    effect = float(np.abs(image * 255 - _run(folder, flat, latents)[0] * 255).mean())
    print(f"parity {REFERENCE_STEM:28s} {_stats(image)}; label map vs all-background: mean {effect:.1f}/255")
    if effect < MIN_MAP_EFFECT:
        raise AssertionError(f"{FOLDER}: the label map barely changes the image ({effect:.2f}/255)")
    return write_torch_case(
        parity / CASES_FILE,
        name=REFERENCE_STEM,
        model=folder.root.relative_to(fixtures_root).as_posix(),
        pipeline="torch loop: LayoutUNet (the exported wrapper) + diffusers PNDMScheduler, CFG with the map in both halves",
        prompt=PROMPT,
        negative=NEGATIVE,
        steps=STEPS,
        cfg=CFG,
        sampler="pndm",
        inputs={
            "label_map": LABEL_MAP_FILE,
            # The map at latent resolution ([K, h, w], row-major), as the engine must compute it.
            "label_tensor": [round(float(v), 6) for v in labels.reshape(-1)],
        },
        reference=(png, npy),
        tokenizer=tokenizer,
        scheduler=scheduler,
    )
