"""Textual-inversion files in every form people have them, and diffusers references for them.

Run:  native-models/.venv/bin/python native-models/tools/make_ti_fixtures.py
Writes test/fixtures/embeddings/ (read by test/unit/engine/prompt/embedding-files.test.ts) and
parity/ti-cases.json + ti-*.png/.npy (read by test/unit/engine/prompt/ti-parity.test.ts).

Embedding files, all holding the same 2×32 vectors (tiny-sd1's text width), written by the code paths that
write them in the wild:

* `ti-a1111.pt`: A1111's `Embedding.save` dict (`string_to_token`, `string_to_param` {'*': tensor}, `name`,
  `step`, `sd_checkpoint`, `sd_checkpoint_name`) through `torch.save` (the zip format of torch >= 1.6);
* `ti-a1111-legacy.pt`: the same dict through `torch.save(..., _use_new_zipfile_serialization=False)`, the
  format torch < 1.6 wrote (magic, protocol and sys-info pickles, the main pickle, the storage keys, then
  each storage as an int64 element count and its bytes);
* `ti-paramdict-legacy.pt`: the original textual_inversion repo's `EmbeddingManager.save` (`string_to_token`
  {'*': tensor(265)}, `string_to_param` a `torch.nn.ParameterDict`), legacy format: a module class pickled
  by persistent id, a LongStorage beside the FloatStorage;
* `ti-diffusers.bin`: diffusers' textual_inversion.py `{placeholder_token: learned_embeds}` through torch.save;
* `ti-card.png`: an A1111 embedding picture, as A1111's trainer writes it (modules/textual_inversion/
  image_embedding.py, ported here: `embedding_to_b64` into the `sd-ti-embedding` text chunk, and
  `insert_image_data_embed`: the zlib-compressed JSON split in low and high nibbles, each block patterned
  by `style_block`, XORed with A1111's LCG (`xor_block`) and set left and right of the picture behind a
  black column). Its embedding name is `name` inside the data (`ti-card-name`), as A1111 reads pictures;
* `ti-stego.png`, `ti-stego.webp` (lossless): the picture without the text chunk, so only the edges
  hold the data (a file whose metadata a tool stripped, or A1111's .webp);
* `evil-zip.pt`, `evil-legacy.pt`: torch.save-shaped files whose pickle calls `os.system`, to be refused
  without running anything (the pickles are written byte by byte here; nothing is unpickled).

The stego decoder `extract` below mirrors A1111's `extract_image_data_embed` and checks every picture
round-trips before it is written.

References (`ti-cases.json`): diffusers' torch StableDiffusionPipeline on tiny-sd1-named's modules (tiny-sd1's
spec and seed, checked against the folder's ONNX text encoder and U-Net), PNDM from parity/latents.npy:

* `ti-diffusers-legacy-pt`: `load_textual_inversion(ti-a1111-legacy.pt, token=...)`;
* `ti-lora-clip-skip`: `load_lora_weights(tiny-kohya) + fuse_lora(components=["text_encoder"])` (the
  engine's `<lora:tiny-kohya:1:0>`: the LoRA's text-encoder half), `clip_skip=1` (A1111's 2);
  diffusers skips layers for the prompt only, A1111 for both texts: each text goes through the pipeline's
  `encode_prompt(..., clip_skip=1)` and the pipeline gets `prompt_embeds` / `negative_prompt_embeds`;
* `ti-lora-clip-skip-embedding`: the LoRA, clip skip and `load_textual_inversion(ti-diffusers.bin)`.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import pickle
import shutil
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from diffusers import PNDMScheduler, StableDiffusionPipeline
from PIL import Image, PngImagePlugin
from transformers import CLIPTokenizer

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, HERE.as_posix())

from fixtures_lib.folders import SD15_SCHEDULER_CONFIG  # noqa: E402
from fixtures_lib.lora import FOLDER as NAMED_FOLDER  # noqa: E402  (also lets transformers take the pinned peft)
from fixtures_lib.parity import LATENTS_FILE, _save_image, _stats  # noqa: E402
from fixtures_lib.tiny_models import IMAGE_SIZE, ModelSpec, build_models  # noqa: E402
from fixtures_lib.tokenizer_files import build_tiny_vocabulary  # noqa: E402

FIXTURES = REPO / "test" / "fixtures"
EMBEDDINGS = FIXTURES / "embeddings"
PARITY = FIXTURES / "parity"
MODEL = FIXTURES / "models" / NAMED_FOLDER
LORA = FIXTURES / "loras" / "tiny-kohya.safetensors"
CASES_FILE = "ti-cases.json"
MERGE_COUNT = 500  # make_fixtures.py
SEED = 1000  # tiny-sd1's ModelSpec seed (tiny-sd1-named has the same weights)
STEPS = 8
CFG = 7.5
CARD_NAME = "ti-card-name"


# ---- A1111's embedding pictures (image_embedding.py), ported -------------------------------------------


def _json_default(obj):
    if isinstance(obj, torch.Tensor):
        return {"TORCHTENSOR": obj.cpu().detach().numpy().tolist()}
    raise TypeError(type(obj))


def embedding_to_b64(data: dict) -> bytes:
    return base64.b64encode(json.dumps(data, default=_json_default).encode())


def _lcg_block(count: int) -> np.ndarray:
    """A1111's lcg(): seed = (1664525·seed + 1013904223) mod 2³², yielding seed mod 255, from seed 0."""
    out = np.empty(count, dtype=np.uint8)
    seed = 0
    for i in range(count):
        seed = (1664525 * seed + 1013904223) % 2**32
        out[i] = seed % 255
    return out


def _xor_block(block: np.ndarray) -> np.ndarray:
    return np.bitwise_xor(block.astype(np.uint8), _lcg_block(block.size).reshape(block.shape) & 0x0F)


def _style_block(block: np.ndarray, sequence: list[int]) -> np.ndarray:
    """Dots of the embedding's first vector as shades, in the high nibble (the data lives in the low one)."""
    from PIL import ImageDraw

    im = Image.new("RGB", (block.shape[1], block.shape[0]))
    draw = ImageDraw.Draw(im)
    i = 0
    for x in range(-6, im.size[0], 8):
        for yi, y in enumerate(range(-6, im.size[1], 8)):
            offset = 4 if yi % 2 == 0 else 0
            shade = sequence[i % len(sequence)]
            i += 1
            draw.ellipse((x + offset, y, x + 6 + offset, y + 6), fill=(shade, shade, shade))
    return block ^ (np.array(im).astype(np.uint8) & 0xF0)


def insert_image_data_embed(image: Image.Image, data: dict) -> Image.Image:
    d = 3
    compressed = np.frombuffer(zlib.compress(json.dumps(data, default=_json_default).encode(), level=9), np.uint8).copy()
    high, low = compressed >> 4, compressed & 0x0F
    h = image.size[1]
    size = low.shape[0] + (h - (low.shape[0] % h))
    size = size + ((h * d) - (size % (h * d)))
    low = np.resize(low, size).reshape((h, -1, d))
    high = np.resize(high, size).reshape((h, -1, d))
    first = list(data["string_to_param"].values())[0].cpu().detach().numpy().tolist()[0][:1024]
    style = (np.abs(first) / np.max(np.abs(first)) * 255).astype(np.uint8)
    low = _xor_block(_style_block(low, list(style)))
    high = _xor_block(_style_block(high, list(style[::-1])))
    im_low, im_high = Image.fromarray(low, mode="RGB"), Image.fromarray(high, mode="RGB")
    out = Image.new("RGB", (image.size[0] + im_low.size[0] + im_high.size[0] + 2, image.size[1]), (0, 0, 0))
    out.paste(im_low, (0, 0))
    out.paste(image, (im_low.size[0] + 1, 0))
    out.paste(im_high, (im_low.size[0] + 1 + image.size[0] + 1, 0))
    return out


def extract(image: Image.Image) -> dict | None:
    """A1111's extract_image_data_embed (crop_black, low nibbles, the black columns, xor, zlib, JSON)."""
    arr = np.array(image.convert("RGB")).astype(np.uint8)
    mask = (arr > 0).all(2)
    cols, rows = mask.any(0), mask.any(1)
    arr = arr[rows.argmax() : mask.shape[0] - rows[::-1].argmax(), cols.argmax() : mask.shape[1] - cols[::-1].argmax()] & 0x0F
    black = np.where(np.sum(arr, axis=(0, 2)) == 0)[0]
    if black.shape[0] < 2:
        return None
    lower = _xor_block(arr[:, : black.min(), :])
    upper = _xor_block(arr[:, black.max() + 1 :, :])
    return json.loads(zlib.decompress(((upper << 4) | lower).flatten().tobytes()))


# ---- torch files --------------------------------------------------------------------------------------


def a1111_dict(vectors: torch.Tensor, name: str) -> dict:
    """modules/textual_inversion/textual_inversion.py Embedding.save."""
    return {
        "string_to_token": {"*": 265},
        "string_to_param": {"*": vectors.clone().requires_grad_(True)},
        "name": name,
        "step": 1500,
        "sd_checkpoint": "4c86efd062",
        "sd_checkpoint_name": "tiny-sd1",
    }


class _System:
    """Pickles as a call of os.system (never unpickled here)."""

    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def evil_files() -> None:
    payload = {"string_to_param": {"*": _System()}}
    data = pickle.dumps(payload, protocol=2)
    with zipfile.ZipFile(EMBEDDINGS / "evil-zip.pt", "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("evil-zip/data.pkl", data)
        z.writestr("evil-zip/version", "3\n")
    magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    head = magic + pickle.dumps(1001, protocol=2) + pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2)
    (EMBEDDINGS / "evil-legacy.pt").write_bytes(head + data + pickle.dumps([], protocol=2))


def write_embeddings(vectors: torch.Tensor) -> None:
    if EMBEDDINGS.exists():
        shutil.rmtree(EMBEDDINGS)
    EMBEDDINGS.mkdir(parents=True)
    torch.save(a1111_dict(vectors, "ti-a1111"), EMBEDDINGS / "ti-a1111.pt")
    torch.save(a1111_dict(vectors, "ti-a1111-legacy"), EMBEDDINGS / "ti-a1111-legacy.pt", _use_new_zipfile_serialization=False)
    params = torch.nn.ParameterDict({"*": torch.nn.Parameter(vectors.clone())})
    torch.save(
        {"string_to_token": {"*": torch.tensor(265)}, "string_to_param": params},
        EMBEDDINGS / "ti-paramdict-legacy.pt",
        _use_new_zipfile_serialization=False,
    )
    torch.save({"ti-diffusers": vectors.clone()}, EMBEDDINGS / "ti-diffusers.bin")

    # The picture A1111 saves beside the .pt: the .pt's dict as torch.load gives it back.
    data = torch.load(EMBEDDINGS / "ti-a1111.pt", weights_only=True)
    data["name"] = CARD_NAME
    rng = np.random.default_rng(5)
    picture = Image.fromarray(rng.integers(1, 256, size=(40, 48, 3), dtype=np.uint8), mode="RGB")
    card = insert_image_data_embed(picture, data)
    info = PngImagePlugin.PngInfo()
    info.add_text("sd-ti-embedding", embedding_to_b64(data))
    card.save(EMBEDDINGS / "ti-card.png", "PNG", pnginfo=info)
    card.save(EMBEDDINGS / "ti-stego.png", "PNG")
    card.save(EMBEDDINGS / "ti-stego.webp", "WEBP", lossless=True, quality=100, exact=True)
    for file in ("ti-card.png", "ti-stego.png", "ti-stego.webp"):
        back = extract(Image.open(EMBEDDINGS / file))
        got = np.array(back["string_to_param"]["*"]["TORCHTENSOR"], dtype=np.float32)
        if back["name"] != CARD_NAME or not np.array_equal(got, vectors.numpy()):
            raise AssertionError(f"{file}: the edges do not give the embedding back")
    evil_files()


# ---- references ---------------------------------------------------------------------------------------


def check_against_onnx(models, tokenizer: CLIPTokenizer) -> None:
    """The rebuilt torch modules are tiny-sd1-named's (text encoder and one U-Net call)."""
    te = ort.InferenceSession(str(MODEL / "text_encoder" / "model.onnx"), providers=["CPUExecutionProvider"])
    ids = tokenizer("a red apple", padding="max_length", max_length=77).input_ids
    onnx_out = te.run(["last_hidden_state"], {"input_ids": np.array([ids], dtype=np.int32)})[0]
    with torch.no_grad():
        states = models.text_encoder(torch.tensor([ids])).last_hidden_state
    if float(np.abs(onnx_out - states.numpy()).max()) > 1e-4:
        raise SystemExit(f"the torch text encoder differs from {MODEL}/text_encoder")
    unet = ort.InferenceSession(str(MODEL / "unet" / "model.onnx"), providers=["CPUExecutionProvider"])
    sample = np.load(PARITY / LATENTS_FILE)
    feeds = {"sample": sample, "timestep": np.array([500], dtype=np.int64), "encoder_hidden_states": states.numpy()}
    feeds = {i.name: feeds[i.name].astype(np.float32 if "float" in i.type else np.int64) for i in unet.get_inputs()}
    onnx_noise = unet.run(None, feeds)[0]
    with torch.no_grad():
        torch_noise = models.unet(torch.from_numpy(sample), 500, states).sample.numpy()
    if float(np.abs(onnx_noise - torch_noise).max()) > 1e-3:
        raise SystemExit(f"the torch U-Net differs from {MODEL}/unet")


@torch.no_grad()
def render(models, tokenizer_dir: Path, latents: np.ndarray, prompt: str, *, lora: bool, embedding: Path | None, clip_skip: int | None):
    pipe = StableDiffusionPipeline(
        vae=models.vae,
        text_encoder=copy.deepcopy(models.text_encoder),
        tokenizer=CLIPTokenizer.from_pretrained(tokenizer_dir),
        unet=copy.deepcopy(models.unet),
        scheduler=PNDMScheduler.from_config(SD15_SCHEDULER_CONFIG),
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    if lora:
        # The text-encoder half of the LoRA only (A1111's <lora:name:1:0>): what clip skip and embeddings
        # meet. (With its U-Net half too, this tiny U-Net sits where the picture is chaotic, see below.)
        pipe.load_lora_weights(LORA.parent.as_posix(), weight_name=LORA.name, adapter_name="l0")
        pipe.fuse_lora(components=["text_encoder"], lora_scale=1.0, adapter_names=["l0"])
        pipe.unload_lora_weights()
        te_moved = any(not torch.equal(a, b) for a, b in zip(pipe.text_encoder.state_dict().values(), models.text_encoder.state_dict().values(), strict=False))
        unet_same = all(torch.equal(a, b) for a, b in zip(pipe.unet.state_dict().values(), models.unet.state_dict().values(), strict=True))
        if not (te_moved and unet_same):
            raise AssertionError(f"the LoRA should change the text encoder only (text encoder moved: {te_moved}, U-Net kept: {unet_same})")
    if embedding is not None:
        pipe.load_textual_inversion(embedding.as_posix(), weight_name=embedding.name, token=embedding.stem, use_safetensors=False)
    # diffusers 0.42.1's clip_skip reads `text_encoder.text_model.final_layer_norm`; transformers 5 flattened
    # CLIPTextModel (the layer norm is on the model itself). An alias outside the module registry (no cycle
    # in state_dict/modules()) gives diffusers its path to the same layer norm; set after loading, as the
    # LoRA loader takes its key prefixes from whether `text_model` exists.
    if not hasattr(pipe.text_encoder, "text_model"):
        pipe.text_encoder.__dict__["text_model"] = pipe.text_encoder
    # diffusers applies clip_skip to the prompt only and encodes the negative prompt from the last layer;
    # A1111 (and the engine) skip on both. So each text goes through diffusers' own encode_prompt (which
    # also expands the embedding's token) with the clip skip, and the pipeline gets the two embeddings.
    def embeds(text: str) -> torch.Tensor:
        return pipe.encode_prompt(text, "cpu", 1, False, clip_skip=clip_skip)[0]

    def run(cond: torch.Tensor, uncond: torch.Tensor) -> np.ndarray:
        return pipe(
            prompt_embeds=cond,
            negative_prompt_embeds=uncond,
            height=IMAGE_SIZE,
            width=IMAGE_SIZE,
            num_inference_steps=STEPS,
            guidance_scale=CFG,
            latents=torch.from_numpy(latents.copy()),
            output_type="np",
        ).images[0]

    cond, uncond = embeds(prompt), embeds("")
    image = run(cond, uncond)
    # A tiny U-Net with a random LoRA can sit where the picture is chaotic in the conditioning (1e-5 moving
    # pixels by 60/255): such a case proves nothing at 2/255. The conditioning nudged by 1e-5 must leave
    # the picture within 0.5/255.
    nudged = run(cond + 1e-5 * torch.randn(cond.shape, generator=torch.Generator().manual_seed(0)), uncond)
    wobble = float(np.abs(nudged - image).max() * 255)
    if wobble > 0.5:
        raise AssertionError(f"{prompt!r}: the picture moves {wobble:.1f}/255 when the conditioning moves 1e-5")
    return image


def main() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    vocab = build_tiny_vocabulary(MODEL / "tokenizer" / "merges.txt", MERGE_COUNT)
    models = build_models(ModelSpec(seed=SEED), vocab.size, vocab.bos_id, vocab.eos_id)
    tokenizer = CLIPTokenizer.from_pretrained(MODEL / "tokenizer")
    check_against_onnx(models, tokenizer)

    width = models.text_encoder.config.hidden_size
    vectors = (torch.randn(2, width, generator=torch.Generator().manual_seed(31)) * 0.6).float()
    write_embeddings(vectors)

    latents = np.load(PARITY / LATENTS_FILE)
    plain = render(models, MODEL / "tokenizer", latents, "a red apple, shiny", lora=False, embedding=None, clip_skip=None)
    cases = []
    specs = [
        # name, prompt (the engine's: A1111 clip skip, <lora:> tag), embedding, lora, A1111 clip skip
        ("ti-diffusers-legacy-pt", "a red apple, ti-a1111-legacy, shiny", "ti-a1111-legacy.pt", False, 1),
        ("ti-lora-clip-skip", "a red apple, shiny", None, True, 2),
        ("ti-lora-clip-skip-embedding", "a red apple, ti-diffusers, shiny", "ti-diffusers.bin", True, 2),
    ]
    for name, prompt, embedding, lora, clip_skip in specs:
        image = render(
            models,
            MODEL / "tokenizer",
            latents,
            prompt,
            lora=lora,
            embedding=EMBEDDINGS / embedding if embedding else None,
            clip_skip=clip_skip - 1 if clip_skip > 1 else None,  # diffusers counts layers skipped after the last
        )
        effect = float(np.abs(image - plain).mean() * 255)
        print(f"parity {name:30s} {_stats(image)}; mean {effect:.1f}/255 from the plain prompt")
        if effect < 1.0:
            raise AssertionError(f"{name} barely differs from the plain prompt")
        png, npy = _save_image(PARITY, name, image)
        cases.append(
            {
                "name": name,
                "model": MODEL.relative_to(FIXTURES).as_posix(),
                "pipeline": "diffusers StableDiffusionPipeline (torch, the exported weights): "
                + ", ".join(
                    p
                    for p in (
                        "load_lora_weights + fuse_lora(components=['text_encoder'], lora_scale=1.0)" if lora else "",
                        f"load_textual_inversion({embedding})" if embedding else "",
                        f"clip_skip={clip_skip - 1}" if clip_skip > 1 else "",
                    )
                    if p
                ),
                "prompt": (f"<lora:{LORA.stem}:1:0> " if lora else "") + prompt,
                "negative": "",
                "steps": STEPS,
                "cfg": CFG,
                "sampler": "pndm",
                "width": image.shape[1],
                "height": image.shape[0],
                "latents": LATENTS_FILE,
                "reference": png,
                "reference_float": npy,
                "clip_skip": clip_skip,
                "embedding": embedding,
                "lora": LORA.name if lora else None,
            }
        )
    # With the LoRA on, clip skip and the embedding must each still move the picture.
    images = {c["name"]: np.load(PARITY / c["reference_float"]) for c in cases}
    lora_only = render(models, MODEL / "tokenizer", latents, "a red apple, shiny", lora=True, embedding=None, clip_skip=None)
    for label, a, b in (
        ("clip skip under the LoRA", images["ti-lora-clip-skip"], lora_only),
        ("the embedding under the LoRA and clip skip", images["ti-lora-clip-skip-embedding"], images["ti-lora-clip-skip"]),
    ):
        effect = float(np.abs(a - b).mean() * 255)
        print(f"effect of {label}: mean {effect:.1f}/255")
        if effect < 1.0:
            raise AssertionError(f"{label} barely changes the picture")
    (PARITY / CASES_FILE).write_text(json.dumps(cases, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    print(f"wrote {len(cases)} cases to {(PARITY / CASES_FILE).relative_to(REPO)}")


if __name__ == "__main__":
    main()
