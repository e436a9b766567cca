"""The exported text-to-image and inpainting folders run in diffusers' own ONNX pipelines
(OnnxStableDiffusionPipeline, OnnxStableDiffusionInpaintPipeline, loaded with from_pretrained on the
folder) and give the same pictures as our onnx_pipeline.OnnxLdm (the code path the evaluation measures,
which follows the engine's feeding rules) from the same initial latents.

Those pipelines hard-code a VAE factor of 8: they make latents of height // 8 × width // 8 and resize
the inpainting picture and mask to 8 × the latent size. So they are called at 8 × the U-Net's sample
size (128 for emoji-ldm), which is the exported picture size when export.pixel_repeat is 2; with
pixel_repeat 1 the text-to-image pipeline still runs (its pictures come out at 4 × the latent size) but
the inpainting pipeline cannot, and is reported as skipped.

  python -m training.diffusers_check [--toy]    # prints the JSON that evaluate stores under "diffusers"
"""
from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from .common import load_images
from .config import add_common_args, load_config
from .onnx_pipeline import OnnxLdm

DIFFUSERS_VAE_FACTOR = 8  # pipeline_onnx_stable_diffusion*.py: latents are height // 8 × width // 8
# Largest 8-bit difference allowed between diffusers' pipelines and ours from the same latents: the maths
# is the same, only float order differs (measured 0 at toy size, 0–1 on the real model).
MAX_DIFF_U8 = 3


def session_options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return options


def to_u8(images01: np.ndarray, repeat: int) -> np.ndarray:
    """diffusers' output_type="np" pictures ([0, 1] NHWC) → uint8 at the trained resolution, rounded as
    OnnxLdm.decode rounds."""
    return (images01[:, ::repeat, ::repeat] * 255).round().astype(np.uint8)


def check_folders(text_dir: Path, inpaint_dir: Path | None, image_u8: np.ndarray, prompt: str, steps: int,
                  guidance: float, seed: int, threads: int = 1) -> dict:
    # Imported here: loading diffusers' pipeline modules is slow and only this check needs them.
    from diffusers import OnnxStableDiffusionInpaintPipeline, OnnxStableDiffusionPipeline

    ours = OnnxLdm(text_dir, threads=threads)
    side = ours.latent_size * DIFFUSERS_VAE_FACTOR
    repeat = side // image_u8.shape[0] if ours.pixel_repeat > 1 else 1
    latents = ours.initial_noise(1, [seed])
    result: dict = {"pipeline_size": side, "steps": steps, "guidance_scale": guidance, "prompt": prompt,
                    "compared": "same initial latents; uint8 pictures at the trained resolution"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the ONNX pipelines are deprecated upstream; they still run
        pipe = OnnxStableDiffusionPipeline.from_pretrained(str(text_dir), provider="CPUExecutionProvider",
                                                           sess_options=session_options(threads), provider_options={})
        theirs = pipe(prompt, height=side, width=side, num_inference_steps=steps, guidance_scale=guidance,
                      latents=latents.copy(), output_type="np").images
    want = ours.text_to_image([prompt], steps, guidance, [seed])
    got = to_u8(theirs, repeat)
    if got.shape != want.shape:
        raise AssertionError(f"{text_dir}: diffusers gave {theirs.shape}, expected pictures like {want.shape}")
    result["text2img"] = {"class": type(pipe).__name__, "output_shape": list(theirs.shape),
                          "max_abs_diff_u8": int(np.abs(got.astype(int) - want.astype(int)).max())}
    if result["text2img"]["max_abs_diff_u8"] > MAX_DIFF_U8:
        raise AssertionError(f"{text_dir}: diffusers' text-to-image pipeline differs from ours: {result['text2img']}")
    if inpaint_dir is None:
        return result
    if repeat * image_u8.shape[0] != side:
        result["inpaint"] = {"skipped": f"the VAE factor is not {DIFFUSERS_VAE_FACTOR} (export.pixel_repeat 1)"}
        return result
    inpaint = OnnxLdm(inpaint_dir, threads=threads)
    size = image_u8.shape[0]
    mask = np.zeros((size, size), np.float32)
    mask[: size // 2] = 1  # top half: whole latent rows, so every resize of it agrees exactly
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = OnnxStableDiffusionInpaintPipeline.from_pretrained(str(inpaint_dir), provider="CPUExecutionProvider",
                                                                  sess_options=session_options(threads),
                                                                  provider_options={})
        picture = Image.fromarray(image_u8.repeat(repeat, 0).repeat(repeat, 1))
        mask_image = Image.fromarray((mask * 255).astype(np.uint8).repeat(repeat, 0).repeat(repeat, 1))
        theirs = pipe(prompt, image=picture, mask_image=mask_image, height=side, width=side, num_inference_steps=steps,
                      guidance_scale=guidance, latents=latents.copy(), output_type="np").images
    want = inpaint.inpaint(image_u8[None], mask[None], [prompt], steps, guidance, [seed])
    got = to_u8(theirs, repeat)
    result["inpaint"] = {"class": type(pipe).__name__, "output_shape": list(theirs.shape), "mask": "top half",
                         "max_abs_diff_u8": int(np.abs(got.astype(int) - want.astype(int)).max())}
    if result["inpaint"]["max_abs_diff_u8"] > MAX_DIFF_U8:
        raise AssertionError(f"{inpaint_dir}: diffusers' inpainting pipeline differs from ours: {result['inpaint']}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_args(parser)
    args = parser.parse_args()
    cfg = load_config(args)
    eval_cfg = cfg["eval"]
    images_u8, records = load_images(cfg.data_dir)
    record = next((r for r in records if r["split"] == "heldout"), records[0])
    inpaint_dir = cfg.inpaint_export_dir if cfg.inpaint_export_dir.exists() else None
    result = check_folders(cfg.export_dir, inpaint_dir, images_u8[record["index"]], record["caption"], eval_cfg["steps"],
                           eval_cfg["guidance_scale"], cfg["seed"], eval_cfg.get("threads", 1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
