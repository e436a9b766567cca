"""An SDXL textual-inversion embedding and diffusers references for it, on test/fixtures/models/tiny-sdxl.

Run:  native-models/.venv/bin/python native-models/tools/make_sdxl_ti_fixtures.py
Writes test/fixtures/embeddings-sdxl/ti-sdxl.safetensors and parity/sdxl-ti-cases.json + sdxl-ti-*.png/.npy
(read by test/unit/engine/prompt/sdxl-ti-parity.test.ts). The model folder is not changed. (A folder of its
own: make_ti_fixtures.py rewrites test/fixtures/embeddings/ from scratch.)

The embedding is an SDXL file as A1111 and Civitai ship them (kohya's sdxl_train_textual_inversion.py
`save_weights`): a safetensors file with `clip_l` [n, 768] and `clip_g` [n, 1280], here [2, 32] and
[2, 48] for tiny-sdxl's two text encoders, in float16 as most such files are.

References: diffusers' torch StableDiffusionXLPipeline on tiny-sdxl's modules (rebuilt from their seed as
make_fixtures.py builds them, checked against the folder's ONNX text encoders), the folder's Euler, from
parity/sdxl-latents.npy, with the embedding loaded as diffusers documents for SDXL files:
`load_textual_inversion(state_dict["clip_l"], token=name, text_encoder=pipe.text_encoder,
tokenizer=pipe.tokenizer)` and the same with `clip_g`, `text_encoder_2`, `tokenizer_2`. The prompts are
short and unweighted, where diffusers' conditioning is A1111's (one chunk, penultimate states, bigG's
pooled embedding). Each case is checked not chaotic (the conditioning nudged by 1e-5 moves the picture
≤ 0.5/255) and the embedding must move the picture (against the prompt with the word left out).
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import numpy as np
import torch
from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline
from safetensors.torch import load_file, save_file
from transformers import CLIPTokenizer

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, HERE.as_posix())

from fixtures_lib.parity import _save_image, _stats  # noqa: E402
from fixtures_lib.sdxl import LATENTS_FILE, build_sdxl_models, rebuilt_text_encoders_checked  # noqa: E402
from fixtures_lib.tokenizer_files import build_tiny_vocabulary  # noqa: E402

FIXTURES = REPO / "test" / "fixtures"
FOLDER = FIXTURES / "models" / "tiny-sdxl"
EMBEDDINGS = FIXTURES / "embeddings-sdxl"
PARITY = FIXTURES / "parity"
CASES_FILE = "sdxl-ti-cases.json"
NAME = "ti-sdxl"
MERGE_COUNT = 500  # make_fixtures.py MERGE_COUNT
SDXL_SEED = 7000  # fixtures_lib/sdxl.py build_sdxl_folders: tiny-sdxl's seed
STEPS = 6
CFG = 5.0
SIZE = 64
VECTORS = 2
SCALE = 0.6

CASES = [
    # (name, prompt, negative, the same texts without the embedding's word: the picture it must move away from)
    ("sdxl-ti-prompt", f"a red apple, {NAME}, shiny", "low quality, dark", ("a red apple, shiny", "low quality, dark")),
    ("sdxl-ti-negative", "a red apple on a wooden table", f"{NAME}, blurry", ("a red apple on a wooden table", "blurry")),
]


def write_embedding(models) -> Path:
    """kohya's SDXL TI format: {"clip_g": [n, 1280], "clip_l": [n, 768]} (here 48 and 32 wide), float16."""
    g = torch.Generator().manual_seed(41)
    clip_l = torch.randn(VECTORS, models.text_encoder.config.hidden_size, generator=g) * SCALE
    clip_g = torch.randn(VECTORS, models.text_encoder_2.config.hidden_size, generator=g) * SCALE
    EMBEDDINGS.mkdir(parents=True, exist_ok=True)
    path = EMBEDDINGS / f"{NAME}.safetensors"
    save_file({"clip_g": clip_g.half().contiguous(), "clip_l": clip_l.half().contiguous()}, path.as_posix())
    return path


def pipeline(models, scheduler_config: dict, embedding: Path | None) -> StableDiffusionXLPipeline:
    pipe = StableDiffusionXLPipeline(
        vae=models.vae,
        # Copies: load_textual_inversion grows the token tables of the pipeline's encoders.
        text_encoder=copy.deepcopy(models.text_encoder),
        text_encoder_2=copy.deepcopy(models.text_encoder_2),
        tokenizer=CLIPTokenizer.from_pretrained(FOLDER / "tokenizer"),
        tokenizer_2=CLIPTokenizer.from_pretrained(FOLDER / "tokenizer_2"),
        unet=models.unet,
        scheduler=EulerDiscreteScheduler.from_config(scheduler_config),
        add_watermarker=False,
        force_zeros_for_empty_prompt=True,
    )
    pipe.set_progress_bar_config(disable=True)
    if embedding is not None:
        state = load_file(embedding.as_posix())
        pipe.load_textual_inversion(state["clip_l"], token=NAME, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer)
        pipe.load_textual_inversion(state["clip_g"], token=NAME, text_encoder=pipe.text_encoder_2, tokenizer=pipe.tokenizer_2)
    return pipe


@torch.no_grad()
def render(pipe: StableDiffusionXLPipeline, latents: np.ndarray, prompt: str, negative: str, check_chaos: bool) -> np.ndarray:
    cond, uncond, pooled, pooled_uncond = pipe.encode_prompt(prompt, device=torch.device("cpu"), num_images_per_prompt=1, do_classifier_free_guidance=True, negative_prompt=negative or None)

    def run(c: torch.Tensor) -> np.ndarray:
        return pipe(
            prompt_embeds=c,
            negative_prompt_embeds=uncond,
            pooled_prompt_embeds=pooled,
            negative_pooled_prompt_embeds=pooled_uncond,
            height=SIZE,
            width=SIZE,
            num_inference_steps=STEPS,
            guidance_scale=CFG,
            latents=torch.from_numpy(latents.copy()),
            output_type="np",
        ).images[0]

    image = run(cond)
    if check_chaos:
        # A tiny U-Net can sit where the picture is chaotic in the conditioning: such a case proves nothing
        # at 2/255. The conditioning nudged by 1e-5 must leave the picture within 0.5/255.
        nudged = run(cond + 1e-5 * torch.randn(cond.shape, generator=torch.Generator().manual_seed(0)))
        wobble = float(np.abs(nudged - image).max() * 255)
        print(f"  {prompt!r} / {negative!r}: a 1e-5 nudge moves {wobble:.2f}/255")
        if wobble > 0.5:
            raise AssertionError(f"{prompt!r}: the picture moves {wobble:.1f}/255 when the conditioning moves 1e-5")
    return image


def main() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    vocab = build_tiny_vocabulary(FOLDER / "tokenizer" / "merges.txt", MERGE_COUNT)
    models = build_sdxl_models(vocab, SDXL_SEED)
    rebuilt_text_encoders_checked(FOLDER, models)
    embedding = write_embedding(models)
    scheduler_config = json.loads((FOLDER / "scheduler" / "scheduler_config.json").read_text())
    latents = np.load(PARITY / LATENTS_FILE)

    plain_pipe = pipeline(models, scheduler_config, None)
    ti_pipe = pipeline(models, scheduler_config, embedding)
    cases = []
    for name, prompt, negative, without in CASES:
        image = render(ti_pipe, latents, prompt, negative, check_chaos=True)
        plain = render(plain_pipe, latents, *without, check_chaos=False)
        effect = float(np.abs(image - plain).mean() * 255)
        peak = float(np.abs(image - plain).max() * 255)
        print(f"parity {name:20s} {_stats(image)}; mean {effect:.1f}/255, max {peak:.1f}/255 from the texts without {NAME}")
        if effect < 1.0:
            raise AssertionError(f"{name}: the embedding barely moves the picture")
        png, npy = _save_image(PARITY, name, image)
        cases.append(
            {
                "name": name,
                "model": FOLDER.relative_to(FIXTURES).as_posix(),
                "pipeline": "diffusers StableDiffusionXLPipeline (torch, the exported weights): "
                f"load_textual_inversion(clip_l → text_encoder/tokenizer, clip_g → text_encoder_2/tokenizer_2, token={NAME!r})",
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
                "embedding": embedding.relative_to(FIXTURES).as_posix(),
                "without_embedding": {"prompt": without[0], "negative": without[1], "mean_levels": round(effect, 2)},
            }
        )
    (PARITY / CASES_FILE).write_text(json.dumps(cases, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    print(f"wrote {len(cases)} cases to {(PARITY / CASES_FILE).relative_to(REPO)}")


if __name__ == "__main__":
    main()
