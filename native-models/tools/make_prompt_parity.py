"""Torch references for the engine's A1111 prompt conditioning, on test/fixtures/models/tiny-sd1-prompt.

Run:  native-models/.venv/bin/python native-models/tools/make_prompt_parity.py
Writes models/tiny-sd1-prompt/, parity/prompt-cases.json, prompt-*.png/.npy and
prompt-embedding.safetensors (read by test/unit/engine/prompt/parity.test.ts).

tiny-sd1-prompt is tiny-sd1 (make_fixtures.py rebuilds its torch modules from seeds, ModelSpec(seed=1000);
they are checked against the committed text_encoder/model.onnx first) with one change: the text encoder's
final LayerNorm gets a seeded random gain and bias. With the default (gain 1, bias 0) every token vector
has mean 0, so A1111's emphasis, which rescales by the ratio of two means, would divide rounding noise by
rounding noise. The text encoder is re-exported as the diffusers convert script does; the other files
are tiny-sd1's bytes. Each case runs
A1111's conditioning (fixtures_lib/a1111_prompt.py: parse, chunk with the comma backtrack and BREAK) and
encodes it the way A1111's FrozenCLIPEmbedderWithCustomWords does:

- each 77-token chunk through CLIPTextModel on its own: `last_hidden_state`, or for clip skip N > 1
  `final_layer_norm(hidden_states[-N])`;
- a textual-inversion embedding's vectors replace the token-embedding rows at its positions (the rows are
  appended to the torch embedding table and looked up there: the same numbers A1111's EmbeddingsWithFixes
  writes);
- emphasis "Original": z·weights, rescaled to the mean before weighting; chunks concatenated (77·k tokens);
- the negative prompt encoded the same way; when its length differs, cond and uncond go through the
  U-Net as two calls (A1111's default, no padding).

Then PNDM with classifier-free guidance from parity/latents.npy, and the VAE decode.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from diffusers import PNDMScheduler
from safetensors.torch import save_file
from transformers import CLIPTokenizer

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, HERE.as_posix())

from fixtures_lib.a1111_prompt import (  # noqa: E402
    Embedding,
    EmbeddingLookup,
    TokenizerSpec,
    emphasis_original,
    padded_tokens,
    tokenize_line,
)
from fixtures_lib.exporters import DIFFUSERS_SCRIPT_DEFAULT_OPSET, _torchscript_export  # noqa: E402
from fixtures_lib.folders import _dummy_prompt_ids  # noqa: E402
from fixtures_lib.onnx_names import compact_internal_names  # noqa: E402
from fixtures_lib.parity import LATENTS_FILE, _save_image, _stats  # noqa: E402
from fixtures_lib.tiny_models import ModelSpec, build_models  # noqa: E402
from fixtures_lib.tokenizer_files import build_tiny_vocabulary  # noqa: E402

FIXTURES = REPO / "test" / "fixtures"
SOURCE = FIXTURES / "models" / "tiny-sd1"
FOLDER = FIXTURES / "models" / "tiny-sd1-prompt"
PARITY = FIXTURES / "parity"
CASES_FILE = "prompt-cases.json"
EMBEDDING_FILE = "prompt-embedding.safetensors"
EMBEDDING_NAME = "prompt-embedding"  # A1111 names an embedding by its file stem
# The same vectors as A1111's own trainer saves them (textual_inversion.py Embedding.save), for the .pt reader.
EMBEDDING_PT_FILE = "prompt-embedding-a1111.pt"
# An SD 2.x-wide embedding (1024): using it on tiny-sd1-prompt must be a clear error naming the file.
WRONG_WIDTH_FILE = "prompt-embedding-sd2.safetensors"
MERGE_COUNT = 500  # make_fixtures.py MERGE_COUNT
SD1_SEED = 1000  # folders.build_all: tiny-sd1's ModelSpec seed
STEPS = 6
CFG = 7.5

LONG = ", ".join(f"{c} apple on a {w} table" for c, w in [("red", "wooden"), ("green", "glass"), ("yellow", "stone")] * 4)

CASES = [
    # (name, prompt, negative, clip skip, uses the embedding)
    ("weighted", "a (red:1.4) apple, ((shiny)), [blurry]", "", 1, False),
    ("break", "a red apple BREAK (green:1.2) leaves", "blurry", 1, False),
    ("two-chunks", LONG, "(blurry:1.3), dark", 1, False),
    ("three-chunks", f"{LONG}, purple plums on a (blue:1.2) plate, shiny", "", 1, False),
    ("chunks-differ", "(a red apple:1.2)", f"{LONG} BREAK dark", 1, False),
    ("clip-skip-2", "a (red:1.2) apple, shiny", "blurry", 2, False),
    ("embedding", f"a red apple, ({EMBEDDING_NAME}:1.2), shiny", "blurry", 1, True),
]


def tokenizer_spec(tokenizer: CLIPTokenizer) -> TokenizerSpec:
    vocab = tokenizer.get_vocab()
    return TokenizerSpec(
        tokenize=lambda texts: tokenizer(texts, truncation=False, add_special_tokens=False)["input_ids"],
        bos=tokenizer.bos_token_id,
        eos=tokenizer.eos_token_id,
        pad=tokenizer.pad_token_id,
        comma=vocab[",</w>"],
    )


@torch.no_grad()
def encode(text_encoder, tok: TokenizerSpec, prompt: str, clip_skip: int, lookup, vectors: torch.Tensor | None) -> torch.Tensor:
    """A1111's forward([prompt]) for one text: [1, 77·chunks, width]."""
    chunks, _ = tokenize_line(prompt, tok, embeddings=lookup)
    vocab_rows = _text_model(text_encoder).embeddings.token_embedding.weight.shape[0]
    zs = []
    for chunk in chunks:
        ids = padded_tokens(chunk, tok)
        lookup_ids = list(ids)
        for offset, _name in chunk.fixes:
            for j in range(vectors.shape[0]):
                lookup_ids[offset + 1 + j] = vocab_rows + j
        table = _text_model(text_encoder).embeddings.token_embedding.weight
        if vectors is not None:
            table = torch.cat([table, vectors])
        inputs_embeds = table[torch.tensor([lookup_ids])]
        out = _run_text_model(text_encoder, torch.tensor([ids]), inputs_embeds)
        z = out.last_hidden_state if clip_skip <= 1 else _text_model(text_encoder).final_layer_norm(out.hidden_states[-clip_skip])
        zs.append(emphasis_original(z, torch.tensor([chunk.multipliers])))
    return torch.cat(zs, dim=1)


def _text_model(text_encoder):
    """transformers 5 flattened CLIPTextModel (no `.text_model`); older versions nest it."""
    return getattr(text_encoder, "text_model", text_encoder)


def _run_text_model(text_encoder, ids: torch.Tensor, inputs_embeds: torch.Tensor):
    """CLIPTextModel with the token embeddings given (the position embeddings are added as usual)."""
    embeddings = _text_model(text_encoder).embeddings
    original = embeddings.token_embedding.forward
    embeddings.token_embedding.forward = lambda _ids: inputs_embeds
    try:
        return text_encoder(input_ids=ids, output_hidden_states=True)
    finally:
        embeddings.token_embedding.forward = original


@torch.no_grad()
def run_case(models, tok, scheduler_config, latents, prompt, negative, clip_skip, lookup, vectors) -> np.ndarray:
    cond = encode(models.text_encoder, tok, prompt, clip_skip, lookup, vectors)
    uncond = encode(models.text_encoder, tok, negative, clip_skip, lookup, vectors)
    scheduler = PNDMScheduler.from_config(scheduler_config)
    scheduler.set_timesteps(STEPS)
    z = torch.from_numpy(latents.copy()) * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        model_input = scheduler.scale_model_input(z, t)
        if cond.shape[1] == uncond.shape[1]:
            u, c = models.unet(torch.cat([model_input] * 2), t, torch.cat([uncond, cond])).sample.chunk(2)
        else:  # A1111's default for different lengths: two U-Net calls, no padding
            u = models.unet(model_input, t, uncond).sample
            c = models.unet(model_input, t, cond).sample
        z = scheduler.step(u + CFG * (c - u), t, z).prev_sample
    decoded = models.vae.decode(z / models.vae.config.scaling_factor).sample
    return (decoded / 2 + 0.5).clamp(0, 1)[0].permute(1, 2, 0).numpy()


def check_text_encoder(models, tokenizer: CLIPTokenizer, folder: Path) -> None:
    """The torch text encoder is the folder's ONNX one."""
    session = ort.InferenceSession(str(folder / "text_encoder" / "model.onnx"), providers=["CPUExecutionProvider"])
    ids = tokenizer("a red apple", padding="max_length", max_length=77).input_ids
    onnx_out = session.run(["last_hidden_state"], {"input_ids": np.array([ids], dtype=np.int32)})[0]
    with torch.no_grad():
        torch_out = models.text_encoder(torch.tensor([ids])).last_hidden_state.numpy()
    diff = float(np.abs(onnx_out - torch_out).max())
    if diff > 1e-4:
        raise SystemExit(f"the torch text encoder differs from {folder}/text_encoder ({diff})")


@torch.no_grad()
def build_folder(models, tokenizer: CLIPTokenizer) -> None:
    """tiny-sd1 with a final LayerNorm of random gain and bias in its text encoder, re-exported."""
    if FOLDER.exists():
        shutil.rmtree(FOLDER)
    shutil.copytree(SOURCE, FOLDER)
    norm = _text_model(models.text_encoder).final_layer_norm
    generator = torch.Generator().manual_seed(SD1_SEED + 50)
    norm.weight.copy_(1 + 0.3 * torch.randn(norm.weight.shape, generator=generator))
    norm.bias.copy_(0.3 + 0.5 * torch.randn(norm.bias.shape, generator=generator))
    path = FOLDER / "text_encoder" / "model.onnx"
    path.unlink()
    torch.manual_seed(SD1_SEED + 10)
    _torchscript_export(
        models.text_encoder,
        (_dummy_prompt_ids(tokenizer).to(torch.int32)),
        path,
        ["input_ids"],
        ["last_hidden_state", "pooler_output"],
        {"input_ids": {0: "batch", 1: "sequence"}},
        DIFFUSERS_SCRIPT_DEFAULT_OPSET,
    )
    model = onnx.load(path.as_posix())
    for extra in [p for p in path.parent.iterdir() if p.name != path.name]:
        extra.unlink()
    onnx.save_model(compact_internal_names(model), path.as_posix())


def main() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    vocab = build_tiny_vocabulary(SOURCE / "tokenizer" / "merges.txt", MERGE_COUNT)
    models = build_models(ModelSpec(seed=SD1_SEED), vocab.size, vocab.bos_id, vocab.eos_id)
    tokenizer = CLIPTokenizer.from_pretrained(str(SOURCE / "tokenizer"))
    check_text_encoder(models, tokenizer, SOURCE)
    build_folder(models, tokenizer)
    check_text_encoder(models, tokenizer, FOLDER)
    tok = tokenizer_spec(tokenizer)

    # A 3-vector embedding as kohya's train_textual_inversion.py saves it ({"emb_params": [n, width]}).
    width = models.text_encoder.config.hidden_size
    vectors = (torch.randn(3, width, generator=torch.Generator().manual_seed(77)) * 0.5).float()
    save_file({"emb_params": vectors.contiguous()}, str(PARITY / EMBEDDING_FILE))
    torch.save(
        {
            "string_to_token": {"*": 265},
            "string_to_param": {"*": vectors.clone().requires_grad_(True)},
            "name": "a name A1111 ignores",
            "step": 500,
            "sd_checkpoint": "0123456789",
            "sd_checkpoint_name": "tiny-sd1-prompt",
        },
        PARITY / EMBEDDING_PT_FILE,
    )
    save_file({"emb_params": torch.zeros(2, 1024)}, str(PARITY / WRONG_WIDTH_FILE))
    lookup = EmbeddingLookup(tok, [Embedding(EMBEDDING_NAME, vectors.shape[0])])

    scheduler_config = json.loads((FOLDER / "scheduler" / "scheduler_config.json").read_text())
    latents = np.load(PARITY / LATENTS_FILE)
    cases = []
    images = {}
    for name, prompt, negative, clip_skip, with_embedding in CASES:
        image = run_case(
            models, tok, scheduler_config, latents, prompt, negative, clip_skip,
            lookup if with_embedding else None, vectors if with_embedding else None,
        )
        stem = f"prompt-{name}"
        png, npy = _save_image(PARITY, stem, image)
        images[name] = image
        chunks = [len(tokenize_line(p, tok, embeddings=lookup if with_embedding else None)[0]) for p in (prompt, negative)]
        print(f"parity {stem:24s} {_stats(image)}; chunks prompt/negative {chunks[0]}/{chunks[1]}")
        cases.append(
            {
                "name": stem,
                "model": FOLDER.relative_to(FIXTURES).as_posix(),
                "pipeline": "torch: A1111 conditioning (fixtures_lib/a1111_prompt.py) + tiny-sd1's torch modules + diffusers PNDMScheduler",
                "prompt": prompt,
                "negative": negative,
                "steps": STEPS,
                "cfg": CFG,
                "sampler": "pndm",
                "width": image.shape[1],
                "height": image.shape[0],
                "latents": LATENTS_FILE,
                "reference": png,
                "reference_float": npy,
                "clip_skip": clip_skip,
                "embedding": EMBEDDING_FILE if with_embedding else None,
                "chunks": {"prompt": chunks[0], "negative": chunks[1]},
            }
        )
    # The features must change the picture, or the cases test little.
    plain = run_case(models, tok, scheduler_config, latents, "a red apple, shiny", "blurry", 1, None, None)
    for name in ("clip-skip-2", "embedding"):
        effect = float(np.abs(images[name] - plain).mean() * 255)
        print(f"parity prompt-{name}: mean {effect:.1f}/255 from the plain prompt")
        if effect < 1.0:
            raise AssertionError(f"prompt-{name} barely differs from the plain prompt")
    (PARITY / CASES_FILE).write_text(json.dumps(cases, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    print(f"wrote {len(cases)} cases to {(PARITY / CASES_FILE).relative_to(REPO)}")


if __name__ == "__main__":
    main()
