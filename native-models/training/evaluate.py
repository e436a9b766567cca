"""Stage 6: evaluate the exported ONNX folders (what ships) and write the numbers as JSON.

- vae_psnr_db: reconstruction PSNR (8-bit, posterior mean) on the held-out images.
- text_fidelity: prompts = canonical captions of training and held-out images; 20 steps, fixed seeds.
  Each output's nearest images are found in a fixed feature space (16×16 area-downsampled RGB, L2)
  over the whole gallery (training + held-out images). A hit = the prompted emoji or one of its
  skin-tone variants (same base code point sequence) among the top 1 / top 5. Chance ≈ 5 · group / N.
- inpaint: held-out images with seeded random masks (brush / box / whole); paste-back keeps the unmasked
  pixels; PSNR of the masked region against the original for the 9-channel model, a blur fill and the
  4-channel latent blend with the text-to-image model.
- speed_s: wall time of one 64×64, 20-step, CFG text-to-image run with Python onnxruntime
  (2 threads), median of several runs. (The shipping number comes from the engine benchmark.)
- samples.png: a grid of generations for fixed prompts (listed in the JSON).
- layout (emoji-ldm-layout/eval.json, also under "layout" here): a seeded sample of held-out images; the map given is
  the image's own (training/labels.py), the prompt its caption. The generated picture's labels are
  recomputed by the same rule and compared with the map given: mean IoU over the labels present in the
  map given (per image, then averaged), at latent-cell resolution (each cell's dominant label, what the
  model was told) and at pixel resolution. Rows: "layout" (caption + own map); "layout_swapped" (caption
  + the map of another held-out image, scored against that map: does the map win over the text?);
  floors: "floor_other_map" (the layout outputs scored against another image's map: the agreement any
  emoji-like picture gets, white around a centred blob) and "text2img_same_prompt" (the text-to-image
  model, same caption and seed, no map: what the text alone reproduces). "Another image" is a fixed
  derangement (cyclic shift by a seeded random offset). "painted": 8 flat-colour maps drawn by
  painted_maps() (discs, hearts, a square, as a user paints them) with a fitting prompt and with "".
  emoji-ldm-layout/samples.png: maps → outputs, rows listed in the JSON.
- diffusers: the text-to-image and inpainting folders loaded with diffusers' OnnxStableDiffusionPipeline /
  OnnxStableDiffusionInpaintPipeline.from_pretrained, one picture each from the same initial latents as
  this evaluation's pipeline, max |difference| in 8-bit values (training/diffusers_check.py).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from .common import load_images
from .config import add_common_args, load_config
from .labels import NUM_LABELS, label_image, label_maps, labels_to_rgb, one_hot_pooled
from .masks import random_mask
from .models import limit_threads
# onnxruntime (OnnxLdm, diffusers_check) is imported where a folder is run, so the scoring helpers above
# (inpaint_cases, run_inpaint, psnr_u8, text_fidelity) also serve training.lcm_proxy on a machine without it.
if TYPE_CHECKING:
    from .onnx_pipeline import OnnxLdm

GRID_PROMPTS = ["red apple", "grinning face", "dog face", "pizza", "rocket", "red heart", "sun", "cat face",
                "green apple", "ghost", "thumbs up sign", "birthday cake", "snowman", "rainbow", "tiger face", "house"]


def features(images_u8: np.ndarray, side: int = 16) -> np.ndarray:
    n, h, w, c = images_u8.shape
    f = h // side
    pooled = images_u8.reshape(n, side, f, side, f, c).astype(np.float32).mean(axis=(2, 4)) / 255.0
    return pooled.reshape(n, -1)


def nearest(query: np.ndarray, gallery: np.ndarray, k: int) -> np.ndarray:
    d = (query ** 2).sum(1)[:, None] - 2 * query @ gallery.T + (gallery ** 2).sum(1)[None]
    return np.argsort(d, axis=1)[:, :k]


def retrieval_chance(wanted_groups, group_sizes: dict, gallery_size: int, k: int) -> float:
    """The top-k hit rate of a retrieval that picks k gallery images at random, averaged over the wanted
    groups: k · |group| / N per prompt (capped at 1; 0 for a group the gallery lacks). An upper bound of the
    exact 1 − C(N−|group|, k)/C(N, k), and close to it while k · |group| ≪ N."""
    return float(np.mean([min(1.0, k * group_sizes.get(g, 0) / gallery_size) for g in wanted_groups]))


def psnr_u8(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    diff = (a.astype(np.float64) - b.astype(np.float64)) / 255.0
    if where is not None:
        diff = diff[where.astype(bool)]
    mse = max(float((diff ** 2).mean()), 1e-10)
    return float(-10 * np.log10(mse))


def gaussian_filter(plane: np.ndarray, sigma: float) -> np.ndarray:
    """2-D Gaussian blur with zero padding (separable, truncated at 3σ)."""
    radius = max(1, int(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel /= kernel.sum()
    t = torch.from_numpy(plane)[None, None]
    t = F.conv2d(t, kernel.view(1, 1, 1, -1), padding=(0, radius))
    t = F.conv2d(t, kernel.view(1, 1, -1, 1), padding=(radius, 0))
    return t[0, 0].numpy()


def blur_fill(image_u8: np.ndarray, mask: np.ndarray, sigma: float = 3.0) -> np.ndarray:
    """Fills the masked region by normalized convolution (Gaussian-weighted mean of known pixels), repeated
    with a growing kernel until every pixel has support; the classic 'blur fill' baseline."""
    known = (mask < 0.5).astype(np.float64)
    img = image_u8.astype(np.float64) * known[..., None]
    out = image_u8.astype(np.float64).copy()
    s = sigma
    todo = mask >= 0.5
    if known.sum() == 0:
        out[:] = 255.0  # nothing known: the dataset background (white)
        return out.round().astype(np.uint8)
    while todo.any():
        weight = gaussian_filter(known, s)
        filled = np.stack([gaussian_filter(img[..., ch], s) for ch in range(3)], -1)
        ok = todo & (weight > 1e-6)
        out[ok] = filled[ok] / weight[ok, None]
        todo &= ~ok
        s *= 2
    return out.round().clip(0, 255).astype(np.uint8)


def paste_back(original: np.ndarray, generated: np.ndarray, masks: np.ndarray) -> np.ndarray:
    m = masks[..., None] >= 0.5
    return np.where(m, generated, original)


def text_fidelity(model: OnnxLdm, images_u8, records, eval_cfg, seed) -> dict:
    rng = np.random.default_rng(seed)
    train = [r for r in records if r["split"] == "train"]
    heldout = [r for r in records if r["split"] == "heldout"]
    picks = {"train": [train[i] for i in rng.choice(len(train), min(eval_cfg["train_prompts"], len(train)), replace=False)],
             "heldout": [heldout[i] for i in rng.choice(len(heldout), min(eval_cfg["heldout_prompts"], len(heldout)), replace=False)]}
    # The rule: the nearest *training* image to each output. Held-out emoji are not in that
    # gallery, so a held-out prompt can only hit through a skin-tone variant that is in training.
    train_idx = np.array([r["index"] for r in train])
    gallery = features(images_u8[train_idx])
    groups = np.array([r["base_unified"] for r in train])
    result = {"feature_space": "16x16 area-downsampled RGB, L2", "gallery": "training images",
              "gallery_images": len(train), "steps": eval_cfg["steps"], "guidance_scale": eval_cfg["guidance_scale"]}
    group_sizes = {g: int((groups == g).sum()) for g in set(groups)}
    for split, chosen in picks.items():
        if not chosen:
            continue
        prompts = [r["caption"] for r in chosen]
        outputs = []
        batch = eval_cfg["batch_size"]
        for start in tqdm(range(0, len(prompts), batch), desc=f"text fidelity ({split})", mininterval=5):
            seeds = [seed + start + i for i in range(len(prompts[start:start + batch]))]
            outputs.append(model.text_to_image(prompts[start:start + batch], eval_cfg["steps"], eval_cfg["guidance_scale"], seeds))
        top = nearest(features(np.concatenate(outputs)), gallery, 5)
        want = np.array([r["base_unified"] for r in chosen])
        hit1 = groups[top[:, 0]] == want
        hit5 = (groups[top] == want[:, None]).any(1)
        chance = retrieval_chance(want, group_sizes, len(train), 5)
        reachable = float(np.mean([g in group_sizes for g in want]))
        result[split] = {"prompts": len(chosen), "top1": float(hit1.mean()), "top5": float(hit5.mean()),
                         "chance_top5": chance, "reachable": reachable}
    return result


def inpaint_cases(images_u8, records, eval_cfg, mask_probabilities, seed) -> tuple[np.ndarray, np.ndarray, list[str], list[int]] | None:
    """The inpainting evaluation's held-out images, seeded masks, prompts (captions) and seeds."""
    heldout = [r for r in records if r["split"] == "heldout"][: eval_cfg["inpaint_images"]]
    if not heldout:
        return None
    rng = np.random.default_rng(seed)
    idx = np.array([r["index"] for r in heldout])
    originals = images_u8[idx]
    masks = np.stack([random_mask(originals.shape[1], rng, mask_probabilities) for _ in idx])
    return originals, masks, [r["caption"] for r in heldout], [seed + i for i in range(len(idx))]


def run_inpaint(fn, cases, steps: int, guidance: float, batch: int) -> np.ndarray:
    """fn over the cases in batches, pasted back onto the originals."""
    originals, masks, prompts, seeds = cases
    out = [fn(originals[s:s + batch], masks[s:s + batch], prompts[s:s + batch], steps, guidance, seeds[s:s + batch])
           for s in range(0, len(originals), batch)]
    return paste_back(originals, np.concatenate(out), masks)


def inpaint_eval(text_model: OnnxLdm, inpaint_model: OnnxLdm | None, images_u8, records, eval_cfg, mask_probabilities, seed) -> dict:
    cases = inpaint_cases(images_u8, records, eval_cfg, mask_probabilities, seed)
    if cases is None:
        return {}
    originals, masks, _prompts, _seeds = cases
    steps, guidance, batch = eval_cfg["steps"], eval_cfg["guidance_scale"], eval_cfg["batch_size"]

    def run(fn) -> np.ndarray:
        return run_inpaint(fn, cases, steps, guidance, batch)

    methods = {"blur_fill": paste_back(originals, np.stack([blur_fill(o, m) for o, m in zip(originals, masks, strict=True)]), masks),
               "latent_blend_4ch": run(text_model.blend_inpaint)}
    if inpaint_model is not None:
        methods["inpaint_9ch"] = run(inpaint_model.inpaint)
    keep = masks < 0.5
    result = {"images": len(originals), "mask_mix": mask_probabilities, "masked_fraction": float(masks.mean())}
    for name, out in methods.items():
        exact = bool(np.array_equal(out[np.broadcast_to(keep[..., None], out.shape)],
                                    originals[np.broadcast_to(keep[..., None], out.shape)]))
        masked = np.broadcast_to((masks >= 0.5)[..., None], out.shape)
        result[name] = {"masked_psnr_db": psnr_u8(out, originals, masked), "unmasked_exact": exact}
    return result


def mean_iou(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per image: the mean over the labels present in `target` of |pred = k ∧ target = k| / |pred = k ∨ target = k|."""
    scores = []
    for p, t in zip(pred, target, strict=True):
        ious = [np.logical_and(p == k, t == k).sum() / np.logical_or(p == k, t == k).sum() for k in np.unique(t)]
        scores.append(float(np.mean(ious)))
    return np.array(scores)


def layout_scores(outputs_u8: np.ndarray, target_cells: np.ndarray, target_pixels: np.ndarray, factor: int) -> dict:
    cells = label_maps(outputs_u8, factor).argmax(1)  # each latent cell's dominant label (ties → lower id)
    return {"cell_miou": float(mean_iou(cells, target_cells).mean()),
            "pixel_miou": float(mean_iou(label_image(outputs_u8), target_pixels).mean())}


def painted_maps(size: int) -> list[tuple[str, np.ndarray]]:
    """Flat-colour label maps like a user paints them (discs, a heart, a square), each with a fitting
    prompt: do outputs follow maps that were not derived from an emoji?"""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    c = size / 2

    def disc(cx: float, cy: float, r: float) -> np.ndarray:
        return (x - cx) ** 2 + (y - cy) ** 2 <= r * r

    def heart(label: int) -> np.ndarray:
        m = np.zeros((size, size), np.uint8)
        r = size * 0.2
        shape = disc(c - r, c - r * 0.4, r) | disc(c + r, c - r * 0.4, r) | (
            (y >= c - r * 0.4) & (np.abs(x - c) <= (size * 0.82 - y) * 0.95))
        m[shape] = label
        return m

    def ringed(label: int, r: float) -> np.ndarray:
        m = np.zeros((size, size), np.uint8)
        m[disc(c, c, r + size / 32)] = 1
        m[disc(c, c, r)] = label
        return m

    face = ringed(5, size * 0.4)
    for ex in (c - size * 0.15, c + size * 0.15):
        face[disc(ex, c - size * 0.08, size * 0.06)] = 1
    apple = np.zeros((size, size), np.uint8)
    apple[disc(c, c + size * 0.06, size * 0.36)] = 3
    apple[disc(c + size * 0.1, c - size * 0.34, size * 0.09)] = 6
    square = np.zeros((size, size), np.uint8)
    square[size // 6: size - size // 6, size // 6: size - size // 6] = 7
    return [("smiling face", face), ("red apple", apple), ("red heart", heart(3)), ("purple heart", heart(8)),
            ("blue square", square), ("tangerine", ringed(4, size * 0.38)), ("green circle", ringed(6, size * 0.38)),
            ("full moon", ringed(2, size * 0.4))]


def layout_eval(text_model: OnnxLdm, layout_model: OnnxLdm, images_u8, records, eval_cfg, seed: int) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed + 5)
    heldout_all = [r for r in records if r["split"] == "heldout"]
    # A seeded sample, not the first N: held-out records come in emoji order, so the first ones are
    # often skin-tone variants of a few emoji.
    pick = np.sort(rng.choice(len(heldout_all), min(eval_cfg["layout_images"], len(heldout_all)), replace=False))
    heldout = [heldout_all[i] for i in pick]
    if len(heldout) < 2:
        return {"skipped": "fewer than 2 held-out images"}, {}
    idx = np.array([r["index"] for r in heldout])
    n = len(idx)
    other = (np.arange(n) + int(rng.integers(1, n))) % n  # a derangement: nobody keeps their own map
    originals = images_u8[idx]
    factor = originals.shape[1] // layout_model.latent_size
    maps = label_maps(originals, factor)
    target_cells, target_pixels = maps.argmax(1), label_image(originals)
    prompts = [r["caption"] for r in heldout]
    steps, guidance, batch = eval_cfg["steps"], eval_cfg["guidance_scale"], eval_cfg["batch_size"]
    seeds = [seed + i for i in range(n)]

    def batched(fn, prompt_list, map_array=None) -> np.ndarray:
        out = []
        for s in range(0, n, batch):
            args = (prompt_list[s:s + batch],) + ((map_array[s:s + batch],) if map_array is not None else ())
            out.append(fn(*args, steps, guidance, seeds[s:s + batch]))
        return np.concatenate(out)

    matched = batched(layout_model.layout_to_image, prompts, maps)
    swapped = batched(layout_model.layout_to_image, prompts, maps[other])
    text_only = batched(text_model.text_to_image, prompts)
    result = {
        "images": n, "labels": NUM_LABELS, "steps": steps, "guidance_scale": guidance,
        "metric": "mean IoU over the labels present in the map given; cell = 16x16 dominant label, pixel = 64x64",
        "layout": layout_scores(matched, target_cells, target_pixels, factor),
        "layout_swapped": layout_scores(swapped, target_cells[other], target_pixels[other], factor),
        "floor_other_map": layout_scores(matched, target_cells[other], target_pixels[other], factor),
        "text2img_same_prompt": layout_scores(text_only, target_cells, target_pixels, factor),
    }
    painted = painted_maps(originals.shape[1])
    painted_prompts = [prompt for prompt, _ in painted]
    painted_pixels = np.stack([m for _, m in painted])
    painted_maps_latent = one_hot_pooled(painted_pixels, factor)
    painted_seeds = seeds[: len(painted)] if len(seeds) >= len(painted) else [seed + i for i in range(len(painted))]
    painted_out = layout_model.layout_to_image(painted_prompts, painted_maps_latent, steps, guidance, painted_seeds)
    painted_empty = layout_model.layout_to_image([""] * len(painted), painted_maps_latent, steps, guidance, painted_seeds)
    painted_cells = painted_maps_latent.argmax(1)
    result["painted"] = {"maps": len(painted), "prompts": painted_prompts,
                         "with_prompt": layout_scores(painted_out, painted_cells, painted_pixels, factor),
                         "empty_prompt": layout_scores(painted_empty, painted_cells, painted_pixels, factor)}
    grid_count = min(8, n)
    empty = layout_model.layout_to_image([""] * grid_count, maps[:grid_count], steps, guidance, seeds[:grid_count])
    rows = [labels_to_rgb(target_pixels[:grid_count]), matched[:grid_count], empty, labels_to_rgb(target_pixels[other][:grid_count]),
            swapped[:grid_count], labels_to_rgb(painted_pixels), painted_out, painted_empty]
    grid = {"rows": ["label map of a held-out image (display colours)", "output: its caption + that map",
                     "output: empty prompt + that map", "the map of another held-out image",
                     "output: the first row's caption + that other map", "painted maps",
                     "output: painted map + its prompt", "output: painted map + empty prompt"],
            "prompts": prompts[:grid_count], "painted_prompts": painted_prompts, "images": rows}
    return result, grid


def write_layout_contract(layout_dir: Path, images_u8: np.ndarray, records: list[dict], out: Path) -> dict:
    """The label-map contract with the engine, as files its toy-chain test reads: a held-out image's label
    map painted in the labels.json colours at the exported picture size (label_map.png) and the tensor
    training computes for it (label_map.npy, float32 [1, K, h, w]: labels at 64×64 → one-hot → 4×4
    means). The engine must turn the PNG into the same tensor (nearest colour, one-hot, VAE-factor means)."""
    vae_config = json.loads((layout_dir / "vae_decoder" / "config.json").read_text())
    repeat = int(vae_config.get("_latent_studio_export", {}).get("pixel_repeat", 1))
    record = next((r for r in records if r["split"] == "heldout"), records[0])
    image = images_u8[record["index"]]
    labels = label_image(image[None])
    painted = labels_to_rgb(labels[0]).repeat(repeat, 0).repeat(repeat, 1)
    unet_config = json.loads((layout_dir / "unet" / "config.json").read_text())
    tensor = label_maps(image[None], image.shape[0] // int(unet_config["sample_size"])).astype(np.float32)
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(painted).save(out / "label_map.png")
    np.save(out / "label_map.npy", tensor)
    return {"image": record["unified"], "png_size": list(painted.shape[:2]), "tensor_shape": list(tensor.shape)}


def write_lcm_contract(lcm_dir: Path, out: Path, seed: int) -> dict:
    """The LCM contract with the engine, as files the toy-chain test reads: initial latents (float32
    [1, 4, h, w]) and this evaluation's picture from them after one LCM step (no re-noising, so no
    sampler noise is involved) with guidance 8 embedded, at the exported size (pixels repeated). The
    engine must draw the same picture (within 2/255) from the same latents."""
    from .onnx_pipeline import OnnxLdm
    model = OnnxLdm(lcm_dir)
    latents = model.initial_noise(1, [seed])
    prompt, guidance = "red apple", 8.0
    image = model.decode(model.denoise([prompt], 1, guidance, [seed]))[0]
    r = model.pixel_repeat
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "latents.npy", latents)
    Image.fromarray(image.repeat(r, 0).repeat(r, 1)).save(out / "expected.png")
    spec = {"prompt": prompt, "guidance_scale": guidance, "steps": 1, "sampler": "lcm", "latents": "latents.npy",
            "expected": "expected.png"}
    (out / "contract.json").write_text(json.dumps(spec, indent=1) + "\n")
    return spec


def save_rows(rows: list[np.ndarray], path: Path, scale: int = 2) -> None:
    side = rows[0].shape[1] * scale
    cols = max(len(r) for r in rows)
    grid = Image.new("RGB", (cols * side, len(rows) * side), (255, 255, 255))
    for y, row in enumerate(rows):
        for x, image in enumerate(row):
            grid.paste(Image.fromarray(image).resize((side, side), Image.Resampling.NEAREST), (x * side, y * side))
    grid.save(path, optimize=True)


def speed(model: OnnxLdm, runs: int) -> dict:
    times = []
    for i in range(runs + 1):
        start = time.perf_counter()
        model.text_to_image(["red apple"], 20, 5.0, [i])
        times.append(time.perf_counter() - start)
    return {"median_s": float(np.median(times[1:])), "min_s": float(min(times[1:])), "runs": runs,
            "setting": f"64x64 (as trained), 20 steps of the folder's sampler ({model.scheduler_class.__name__}), CFG (U-Net batch 2), Python onnxruntime, 2 threads"}


def sample_grid(model: OnnxLdm, prompts: list[str], path: Path, steps: int, guidance: float, seed: int, scale: int = 2) -> None:
    images = model.text_to_image(prompts, steps, guidance, [seed + i for i in range(len(prompts))])
    cols = 8 if len(prompts) >= 8 else len(prompts)
    rows = (len(prompts) + cols - 1) // cols
    side = images.shape[1] * scale
    grid = Image.new("RGB", (cols * side, rows * side), (255, 255, 255))
    for i, image in enumerate(images):
        grid.paste(Image.fromarray(image).resize((side, side), Image.Resampling.NEAREST), ((i % cols) * side, (i // cols) * side))
    grid.save(path, optimize=True)


LCM_STEPS = (4, 2)
LCM_BAR_TEXT_RATIO = 0.9  # top-5 at 4 steps ≥ 90% of the teacher's at 20 steps
# The seeds of the teacher's second inpainting (the sample-diversity reference): far from the evaluation's.
OTHER_NOISE_SEED_OFFSET = 100_000
LCM_BAR_INPAINT_DB = 20.0  # masked PSNR against the teacher's own inpainting at 4 steps


def lcm_guidances(eval_cfg: dict) -> list[float]:
    """The embedded guidance scales the LCM rows use: the teacher's evaluation scale, and 1 (ω = 0)."""
    return [float(eval_cfg["guidance_scale"]), 1.0]


def lcm_text_eval(lcm: OnnxLdm, images_u8, records, eval_cfg, seed, teacher: dict) -> dict:
    """Text fidelity of an LCM folder at 4 and 2 steps (one U-Net call per step, guidance embedded)
    against the teacher's own figures at its 20 steps with CFG (same prompts and seeds)."""
    result: dict = {"teacher": {"steps": teacher["steps"], "guidance_scale": teacher["guidance_scale"],
                                **{split: {"top1": teacher[split]["top1"], "top5": teacher[split]["top5"]}
                                   for split in ("train", "heldout") if split in teacher}},
                    "bar": f"top-5 at 4 steps (guidance {eval_cfg['guidance_scale']} embedded, no CFG batch) ≥ "
                           f"{LCM_BAR_TEXT_RATIO:.0%} of the teacher's at {teacher['steps']} steps, on each split",
                    "runs": []}
    for steps in LCM_STEPS:
        for guidance in lcm_guidances(eval_cfg):
            fidelity = text_fidelity(lcm, images_u8, records, {**eval_cfg, "steps": steps, "guidance_scale": guidance}, seed)
            row: dict = {"steps": steps, "guidance_scale": guidance}
            for split in ("train", "heldout"):
                if split in fidelity and split in teacher:
                    top5 = fidelity[split]["top5"]
                    row[split] = {"top1": fidelity[split]["top1"], "top5": top5,
                                  "top5_vs_teacher": top5 / teacher[split]["top5"] if teacher[split]["top5"] > 0 else None}
            result["runs"].append(row)
    main_row = next(r for r in result["runs"] if r["steps"] == 4 and r["guidance_scale"] == float(eval_cfg["guidance_scale"]))
    ratios = [main_row[s]["top5_vs_teacher"] for s in ("train", "heldout") if s in main_row]
    result["meets_bar"] = bool(ratios) and all(r is not None and r >= LCM_BAR_TEXT_RATIO for r in ratios)
    return result


def lcm_inpaint_eval(lcm: OnnxLdm, teacher_model: OnnxLdm, images_u8, records, eval_cfg, mask_probabilities, seed) -> tuple[dict, list]:
    """Masked PSNR of the LCM inpainting (4 and 2 steps) against the teacher's own inpainting (its 20 steps,
    CFG) of the same images, masks, prompts and seeds, and against the originals; all pasted back."""
    cases = inpaint_cases(images_u8, records, eval_cfg, mask_probabilities, seed)
    if cases is None:
        return {}, []
    originals, masks, _prompts, _seeds = cases
    batch = eval_cfg["batch_size"]
    teacher_out = run_inpaint(teacher_model.inpaint, cases, eval_cfg["steps"], eval_cfg["guidance_scale"], batch)
    # What two equally good fills agree to: the teacher against itself from other initial noise (where the
    # surroundings do not determine the masked content, two samples differ however good each is).
    other_noise = (*cases[:3], [s + OTHER_NOISE_SEED_OFFSET for s in cases[3]])
    teacher_other = run_inpaint(teacher_model.inpaint, other_noise, eval_cfg["steps"], eval_cfg["guidance_scale"], batch)
    masked = np.broadcast_to((masks >= 0.5)[..., None], originals.shape)
    # Whole-picture masks (nothing around to follow) and the rest, apart: the pooled figure weighs each
    # masked pixel alike, so the whole-picture cases' pixels dominate it.
    whole = masks.reshape(len(masks), -1).min(1) >= 0.5
    kinds = {"whole": whole, "part": ~whole}

    def by_kind(out: np.ndarray) -> dict:
        return {k: psnr_u8(out[sel], teacher_out[sel], masked[sel]) for k, sel in kinds.items() if sel.any()}

    result: dict = {"images": len(originals), "mask_mix": mask_probabilities, "masked_fraction": float(masks.mean()),
                    "masked_pixel_share": {k: float((masks[sel] >= 0.5).sum() / max(1, (masks >= 0.5).sum())) for k, sel in kinds.items()},
                    "teacher": {"steps": eval_cfg["steps"], "guidance_scale": eval_cfg["guidance_scale"],
                                "masked_psnr_db_vs_original": psnr_u8(teacher_out, originals, masked),
                                "masked_psnr_db_vs_itself_other_noise": psnr_u8(teacher_other, teacher_out, masked),
                                "masked_psnr_db_vs_itself_other_noise_by_mask": by_kind(teacher_other)},
                    "bar": f"masked PSNR against the teacher's inpainting at 4 steps (guidance {eval_cfg['guidance_scale']} "
                           f"embedded) ≥ {LCM_BAR_INPAINT_DB} dB",
                    "runs": []}
    outputs = {}
    # One step too: the consistency function alone, without the re-noising between steps.
    for steps in (*LCM_STEPS, 1):
        for guidance in lcm_guidances(eval_cfg):
            out = run_inpaint(lcm.inpaint, cases, steps, guidance, batch)
            outputs[(steps, guidance)] = out
            result["runs"].append({"steps": steps, "guidance_scale": guidance,
                                   "masked_psnr_db_vs_teacher": psnr_u8(out, teacher_out, masked),
                                   "masked_psnr_db_vs_teacher_by_mask": by_kind(out),
                                   "masked_psnr_db_vs_original": psnr_u8(out, originals, masked)})
    main_row = next(r for r in result["runs"] if r["steps"] == 4 and r["guidance_scale"] == float(eval_cfg["guidance_scale"]))
    result["meets_bar"] = main_row["masked_psnr_db_vs_teacher"] >= LCM_BAR_INPAINT_DB
    g = float(eval_cfg["guidance_scale"])
    n = min(8, len(originals))
    shown = np.where((masks[:n] >= 0.5)[..., None], np.uint8(128), originals[:n])
    rows = [originals[:n], shown, teacher_out[:n], outputs[(4, g)][:n], outputs[(2, g)][:n]]
    return result, rows


def lcm_model_eval(cfg, images_u8, records, eval_cfg, seed, teacher_fidelity: dict | None,
                   which: tuple[str, ...] = ("text", "inpaint")) -> dict:
    """Writes eval.json and samples.png into each exported LCM folder (of `which`); returns the reports."""
    from .onnx_pipeline import OnnxLdm
    report: dict = {}
    threads = eval_cfg.get("threads", 1)
    export_summary = {}
    # training.export_onnx's summary (the distillation steps): beside the folders with --out-root, else in the work folder.
    for summary_path in (cfg.export_root / "export_report.json", cfg.work_dir / "export_report.json"):
        if summary_path.exists():
            export_summary = json.loads(summary_path.read_text())
            break
    if "text" in which and cfg.lcm_export_dir.exists():
        if teacher_fidelity is None:
            raise SystemExit(f"the LCM evaluation compares with the teacher's text fidelity: run it too, or keep "
                             f"{cfg.export_dir / 'eval.json'} with a text_fidelity section")
        lcm = OnnxLdm(cfg.lcm_export_dir, threads=threads)
        result = {"model": f"{cfg.name}-lcm", "toy": cfg.toy, "distilled": export_summary.get("lcm_step"),
                  "text_fidelity": lcm_text_eval(lcm, images_u8, records, eval_cfg, seed, teacher_fidelity)}
        g = float(eval_cfg["guidance_scale"])
        teacher = OnnxLdm(cfg.export_dir, threads=threads)
        seeds = [seed + i for i in range(len(GRID_PROMPTS))]
        rows, names = [], []
        for model, steps, guidance, name in ((lcm, 4, g, f"LCM, 4 steps, guidance {g} embedded"),
                                             (lcm, 2, g, f"LCM, 2 steps, guidance {g} embedded"),
                                             (lcm, 4, 1.0, "LCM, 4 steps, guidance 1 (ω = 0)"),
                                             (teacher, eval_cfg["steps"], g, f"teacher, {eval_cfg['steps']} steps, CFG {g}")):
            images = model.text_to_image(GRID_PROMPTS, steps, guidance, seeds)
            rows += [images[:8], images[8:]]
            names += [f"{name} (prompts 1-8)", f"{name} (prompts 9-16)"]
        save_rows(rows, cfg.lcm_export_dir / "samples.png")
        result["sample_grid"] = {"file": "samples.png", "prompts": GRID_PROMPTS, "rows": names, "seeds": f"{seed}+i"}
        (cfg.lcm_export_dir / "eval.json").write_text(json.dumps(result, indent=1) + "\n")
        if cfg.toy:  # the toy chain's files for test/unit/native-models/toy-chain.test.ts
            write_lcm_contract(cfg.lcm_export_dir, cfg.work_dir / "lcm_contract", seed)
        report["lcm"] = result
        print(json.dumps({"lcm": {k: v for k, v in result.items() if k != "sample_grid"}}), flush=True)
    if "inpaint" in which and cfg.inpaint_lcm_export_dir.exists() and cfg.inpaint_export_dir.exists():
        lcm = OnnxLdm(cfg.inpaint_lcm_export_dir, threads=threads)
        teacher = OnnxLdm(cfg.inpaint_export_dir, threads=threads)
        inpaint, rows = lcm_inpaint_eval(lcm, teacher, images_u8, records, eval_cfg, cfg["train_inpaint"]["mask_probabilities"], seed)
        result = {"model": f"{cfg.name}-inpaint-lcm", "toy": cfg.toy, "distilled": export_summary.get("inpaint_lcm_step"),
                  "inpaint": inpaint}
        if rows:
            save_rows(rows, cfg.inpaint_lcm_export_dir / "samples.png")
            g = float(eval_cfg["guidance_scale"])
            result["sample_grid"] = {"file": "samples.png", "rows": [
                "held-out image", "mask (gray)", f"teacher inpainting, {eval_cfg['steps']} steps, CFG {g}",
                f"LCM inpainting, 4 steps, guidance {g} embedded", f"LCM inpainting, 2 steps, guidance {g} embedded"],
                "seeds": f"{seed}+i", "prompt": "each image's caption"}
        (cfg.inpaint_lcm_export_dir / "eval.json").write_text(json.dumps(result, indent=1) + "\n")
        report["inpaint_lcm"] = result
        print(json.dumps({"inpaint_lcm": {k: v for k, v in result.items() if k != "sample_grid"}}), flush=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_args(parser)
    parser.add_argument("--skip", nargs="*", default=[], choices=["vae", "text", "inpaint", "layout", "diffusers", "speed", "grid", "lcm"])
    parser.add_argument("--lcm", nargs="+", default=["text", "inpaint"], choices=["text", "inpaint"],
                        help="which LCM folders to evaluate (emoji-ldm-lcm: text, emoji-ldm-inpaint-lcm: inpaint)")
    args = parser.parse_args()
    from .diffusers_check import check_folders
    from .onnx_pipeline import OnnxLdm
    cfg = load_config(args)
    eval_cfg = cfg["eval"]
    limit_threads(eval_cfg.get("threads", 1))
    images_u8, records = load_images(cfg.data_dir)
    text_model = OnnxLdm(cfg.export_dir, threads=eval_cfg.get("threads", 1))
    inpaint_model = OnnxLdm(cfg.inpaint_export_dir, threads=eval_cfg.get("threads", 1)) if cfg.inpaint_export_dir.exists() else None
    seed = cfg["seed"]
    report: dict = {"model": cfg.name, "toy": cfg.toy}
    heldout_idx = np.array([r["index"] for r in records if r["split"] == "heldout"])
    if "vae" not in args.skip:
        x = images_u8[heldout_idx].transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1
        recon = np.concatenate([text_model.decode(text_model.encode_image(x[s:s + 32])) for s in range(0, len(x), 32)])
        per_image = [psnr_u8(a, b) for a, b in zip(recon, images_u8[heldout_idx], strict=True)]
        report["vae_psnr_db"] = {"heldout_mean": float(np.mean(per_image)), "heldout_images": len(per_image),
                                 "heldout_pooled": psnr_u8(recon, images_u8[heldout_idx])}
        print(json.dumps({"vae_psnr_db": report["vae_psnr_db"]}), flush=True)
    if "text" not in args.skip:
        report["text_fidelity"] = text_fidelity(text_model, images_u8, records, eval_cfg, seed)
        print(json.dumps({"text_fidelity": report["text_fidelity"]}), flush=True)
    if "inpaint" not in args.skip:
        report["inpaint"] = inpaint_eval(text_model, inpaint_model, images_u8, records, eval_cfg,
                                         cfg["train_inpaint"]["mask_probabilities"], seed)
        print(json.dumps({"inpaint": report["inpaint"]}), flush=True)
    if "layout" not in args.skip and cfg.layout_export_dir.exists():
        layout_model = OnnxLdm(cfg.layout_export_dir, threads=eval_cfg.get("threads", 1))
        report["layout"], grid = layout_eval(text_model, layout_model, images_u8, records, eval_cfg, seed)
        if grid:
            save_rows(grid.pop("images"), cfg.layout_export_dir / "samples.png")
            report["layout"]["sample_grid"] = {"file": "samples.png", **grid, "seeds": f"{seed}+i",
                                               "steps": eval_cfg["steps"], "guidance_scale": eval_cfg["guidance_scale"]}
        if cfg.toy:  # the toy chain's files for test/unit/native-models/toy-chain.test.ts
            write_layout_contract(cfg.layout_export_dir, images_u8, records, cfg.work_dir / "layout_contract")
        (cfg.layout_export_dir / "eval.json").write_text(json.dumps({"model": f"{cfg.name}-layout", "toy": cfg.toy,
                                                                     "layout": report["layout"]}, indent=1) + "\n")
        print(json.dumps({"layout": {k: v for k, v in report["layout"].items() if k != "sample_grid"}}), flush=True)
    if "diffusers" not in args.skip:
        record = next((r for r in records if r["split"] == "heldout"), records[0])
        report["diffusers"] = check_folders(cfg.export_dir, cfg.inpaint_export_dir if inpaint_model else None,
                                            images_u8[record["index"]], record["caption"], eval_cfg["steps"],
                                            eval_cfg["guidance_scale"], seed, eval_cfg.get("threads", 1))
        print(json.dumps({"diffusers": report["diffusers"]}), flush=True)
    if "speed" not in args.skip:
        fast = OnnxLdm(cfg.export_dir, threads=2)
        report["speed"] = speed(fast, eval_cfg["speed_runs"])
        print(json.dumps({"speed": report["speed"]}), flush=True)
    if "grid" not in args.skip:
        grid_path = cfg.export_dir / "samples.png"
        sample_grid(text_model, GRID_PROMPTS, grid_path, eval_cfg["steps"], eval_cfg["guidance_scale"], seed)
        report["sample_grid"] = {"file": grid_path.name, "prompts": GRID_PROMPTS, "layout": "8 per row, left to right",
                                 "steps": eval_cfg["steps"], "guidance_scale": eval_cfg["guidance_scale"], "seeds": f"{seed}+i"}
    out = cfg.export_dir / "eval.json"
    if "lcm" not in args.skip:
        teacher_fidelity = report.get("text_fidelity")
        if teacher_fidelity is None and out.exists():
            teacher_fidelity = json.loads(out.read_text()).get("text_fidelity")
        lcm_report = lcm_model_eval(cfg, images_u8, records, eval_cfg, seed, teacher_fidelity, tuple(args.lcm))
        report["lcm_summary"] = {name: {"file": f"{cfg.name}-{name.replace('_', '-')}/eval.json",
                                        "meets_bar": value.get("text_fidelity", value.get("inpaint", {})).get("meets_bar")}
                                 for name, value in lcm_report.items()}
    if args.skip and out.exists():
        # A partial run (--skip) keeps the sections it did not compute from the previous eval.json and says so.
        previous = json.loads(out.read_text())
        kept = [k for k in previous if k not in report and k != "partial_update"]
        report = {**{k: previous[k] for k in kept}, **report,
                  "partial_update": {"computed": [k for k in report if k not in ("model", "toy")], "kept_from_previous": kept}}
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"evaluate: wrote {out}", flush=True)


if __name__ == "__main__":
    main()
