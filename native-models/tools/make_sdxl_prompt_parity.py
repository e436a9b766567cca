"""Torch references for A1111 prompt semantics on SDXL's two text encoders, on test/fixtures/models/tiny-sdxl.

Run:  native-models/.venv/bin/python native-models/tools/make_sdxl_prompt_parity.py
Writes parity/sdxl-prompt-cases.json, sdxl-prompt-*.png/.npy and each prompt's conditioning
sdxl-prompt-*-cond.npy (states then pooled; read by
test/unit/engine/pipelines/sdxl-prompts.test.ts). The model folder is not changed.

tiny-sdxl's torch modules are rebuilt from their seed (fixtures_lib/sdxl.py build_sdxl_models(vocab, 7000),
as make_fixtures.py builds them) and checked against the committed text encoders first. Each case encodes
the prompt and the negative the way AUTOMATIC1111 does for SDXL (modules/sd_models_xl.py,
sd_hijack_clip.py, sd_hijack_open_clip.py):

- each encoder (CLIP-L `FrozenCLIPEmbedderForSDXLWithCustomWords`, OpenCLIP bigG
  `FrozenOpenCLIPEmbedder2WithCustomWords`) parses and chunks the text on its own with its own tokenizer
  (fixtures_lib/a1111_prompt.py: weights, BREAK, 75-token chunks with the comma backtrack; CLIP-L pads with
  EOS, bigG with `!` (id_pad 0) after the first EOS);
- every 77-token chunk runs through the encoder alone; its penultimate hidden state (`hidden_states[-2]`,
  no final LayerNorm) is weighted with emphasis "Original" (z·w, mean restored) per encoder;
- the chunks are concatenated along the sequence (77·k tokens) and the two encoders along the features
  (sgm GeneralConditioner: 32 + 48 = 80 here, 768 + 1280 = 2048 in SDXL);
- the pooled embedding (U-Net `text_embeds`) is bigG's projected `text_embeds` of the first chunk;
- an empty negative is zeros (A1111's force_zero_negative_prompt; diffusers' force_zeros_for_empty_prompt);
- prompt and negative of different chunk counts go through the U-Net as two calls.

Then Euler (the folder's scheduler config) with classifier-free guidance from parity/sdxl-latents.npy,
time_ids (64, 64, 0, 0, 64, 64), and the VAE decode.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from diffusers import EulerDiscreteScheduler
from transformers import CLIPTokenizer

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, HERE.as_posix())

from fixtures_lib.a1111_prompt import TokenizerSpec, emphasis_original, padded_tokens, tokenize_line  # noqa: E402
from fixtures_lib.parity import _save_image, _stats  # noqa: E402
from fixtures_lib.sdxl import LATENTS_FILE, build_sdxl_models, rebuilt_text_encoders_checked  # noqa: E402
from fixtures_lib.tokenizer_files import build_tiny_vocabulary  # noqa: E402

FIXTURES = REPO / "test" / "fixtures"
FOLDER = FIXTURES / "models" / "tiny-sdxl"
PARITY = FIXTURES / "parity"
CASES_FILE = "sdxl-prompt-cases.json"
MERGE_COUNT = 500  # make_fixtures.py MERGE_COUNT
SDXL_SEED = 7000  # fixtures_lib/sdxl.py build_sdxl_folders: tiny-sdxl's seed
STEPS = 6
CFG = 5.0
SIZE = 64

# The weighted case's prompt and negative without weights (the references show the weights' effect).
UNWEIGHTED = ("a red apple, shiny, blurry on a wooden table", "low quality, dark")
LONG = ", ".join(f"{c} apple on a {w} table" for c, w in [("red", "wooden"), ("green", "glass"), ("yellow", "stone")] * 4)

CASES = [
    # (name, prompt, negative)
    ("weighted", "(a red apple, shiny:3), [blurry] on a (wooden table:0.3)", "(low quality:1.3), dark"),
    ("break", "a red apple BREAK (green:1.2) leaves on a table", "blurry"),
    ("long-chunks-differ", f"{LONG}, (purple:1.2) plums", "(blurry:1.2), dark"),
    ("long-empty-negative", f"(a red apple:1.1) BREAK {LONG}", ""),
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
def encode_one(text_encoder, tok: TokenizerSpec, text: str) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """One encoder's A1111 forward([text]): [1, 77·chunks, width], the first chunk's pooled (bigG), chunks."""
    chunks, _ = tokenize_line(text, tok)
    zs = []
    pooled = None
    for i, chunk in enumerate(chunks):
        out = text_encoder(input_ids=torch.tensor([padded_tokens(chunk, tok)]), output_hidden_states=True)
        zs.append(emphasis_original(out.hidden_states[-2], torch.tensor([chunk.multipliers])))
        if i == 0 and hasattr(out, "text_embeds"):
            pooled = out.text_embeds
    return torch.cat(zs, dim=1), pooled, len(chunks)


def encode(models, toks, text: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Both encoders: states concatenated along the features, bigG's pooled, chunk count."""
    z1, _, n1 = encode_one(models.text_encoder, toks[0], text)
    z2, pooled, n2 = encode_one(models.text_encoder_2, toks[1], text)
    assert n1 == n2, f"chunk counts differ: {n1} vs {n2}"
    return torch.cat([z1, z2], dim=-1), pooled, n1


@torch.no_grad()
def run_case(models, toks, scheduler_config, latents, prompt, negative, save_as: str | None = None) -> tuple[np.ndarray, int, int]:
    cond, pooled, chunks = encode(models, toks, prompt)
    if save_as:  # the prompt's conditioning on its own: [77·chunks, 80] states, then the pooled [40]
        np.save(PARITY / f"{save_as}-cond.npy", np.concatenate([cond[0].numpy().ravel(), pooled[0].numpy()]).astype(np.float32))
    if negative == "":
        uncond, pooled_uncond, uncond_chunks = torch.zeros_like(cond), torch.zeros_like(pooled), 0
    else:
        uncond, pooled_uncond, uncond_chunks = encode(models, toks, negative)
    time_ids = torch.tensor([[SIZE, SIZE, 0, 0, SIZE, SIZE]], dtype=torch.float32)
    scheduler = EulerDiscreteScheduler.from_config(scheduler_config)
    scheduler.set_timesteps(STEPS)
    z = torch.from_numpy(latents.copy()) * scheduler.init_noise_sigma
    unet = models.unet
    for t in scheduler.timesteps:
        x = scheduler.scale_model_input(z, t)
        if cond.shape[1] == uncond.shape[1]:
            added = {"text_embeds": torch.cat([pooled_uncond, pooled]), "time_ids": torch.cat([time_ids, time_ids])}
            u, c = unet(torch.cat([x, x]), t, torch.cat([uncond, cond]), added_cond_kwargs=added).sample.chunk(2)
        else:  # A1111's default for different lengths: two U-Net calls, no padding
            u = unet(x, t, uncond, added_cond_kwargs={"text_embeds": pooled_uncond, "time_ids": time_ids}).sample
            c = unet(x, t, cond, added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids}).sample
        z = scheduler.step(u + CFG * (c - u), t, z).prev_sample
    decoded = models.vae.decode(z / models.vae.config.scaling_factor).sample
    return (decoded / 2 + 0.5).clamp(0, 1)[0].permute(1, 2, 0).numpy(), chunks, uncond_chunks


def main() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    vocab = build_tiny_vocabulary(FOLDER / "tokenizer" / "merges.txt", MERGE_COUNT)
    models = build_sdxl_models(vocab, SDXL_SEED)
    tokenizers = rebuilt_text_encoders_checked(FOLDER, models)
    toks = tuple(tokenizer_spec(t) for t in tokenizers)
    if toks[0].pad == toks[1].pad:
        raise SystemExit("tokenizer_2 should pad with '!' (OpenCLIP), not EOS")

    scheduler_config = json.loads((FOLDER / "scheduler" / "scheduler_config.json").read_text())
    latents = np.load(PARITY / LATENTS_FILE)
    cases = []
    images = {}
    for name, prompt, negative in CASES:
        stem = f"sdxl-prompt-{name}"
        image, chunks, uncond_chunks = run_case(models, toks, scheduler_config, latents, prompt, negative, stem)
        png, npy = _save_image(PARITY, stem, image)
        images[name] = image
        print(f"parity {stem:32s} {_stats(image)}; chunks prompt/negative {chunks}/{uncond_chunks}")
        cases.append(
            {
                "name": stem,
                "model": FOLDER.relative_to(FIXTURES).as_posix(),
                "pipeline": "torch: A1111's SDXL conditioning (fixtures_lib/a1111_prompt.py on both encoders) + tiny-sdxl's torch modules + diffusers EulerDiscreteScheduler",
                "prompt": prompt,
                "negative": negative,
                "steps": STEPS,
                "cfg": CFG,
                "sampler": "euler",
                "width": SIZE,
                "height": SIZE,
                "latents": LATENTS_FILE,
                "reference": png,
                "reference_float": npy,
                "chunks": {"prompt": chunks, "negative": uncond_chunks},
                "prompt_conditioning": f"{stem}-cond.npy",
            }
        )
    # Weights must change the picture, or the weighted case proves little. The tiny U-Net answers weights
    # weakly (the mean restore undoes most of a uniform scale), so the case weights hard; the test also
    # compares the conditioning itself (the -cond.npy files).
    plain, _, _ = run_case(models, toks, scheduler_config, latents, UNWEIGHTED[0], UNWEIGHTED[1])
    effect = float(np.abs(images["weighted"] - plain).mean() * 255)
    peak = float(np.abs(images["weighted"] - plain).max() * 255)
    print(f"parity sdxl-prompt-weighted: mean {effect:.2f}/255, max {peak:.1f}/255 from the unweighted prompt")
    if effect < 0.5 or peak < 4:  # peak: twice the tests' 2/255 bar
        raise AssertionError("sdxl-prompt-weighted barely differs from the unweighted prompt")
    (PARITY / CASES_FILE).write_text(json.dumps(cases, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    print(f"wrote {len(cases)} cases to {(PARITY / CASES_FILE).relative_to(REPO)}")


if __name__ == "__main__":
    main()
