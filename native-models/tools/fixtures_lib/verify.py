"""Checks on the written folders: I/O signatures in onnxruntime, files present, ONNX vs torch
agreement, decoder output not saturated, diffusers ONNX pipelines run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from PIL import Image

from .folders import SUBMODELS, BuiltFolder
from .tiny_models import LATENT_CHANNELS, LATENT_SIZE

ANY = "*"  # an exporter-generated symbolic dimension name (e.g. "Addlast_hidden_state_dim_0")

# EXPECTED[folder][model] = {"inputs"|"outputs": {name: (dtype, shape)}}; a str dim is the exact
# symbolic name, ANY any symbol, an int a static size.

_SCRIPT_TEXT = {
    "inputs": {"input_ids": ("int32", ["batch", "sequence"])},
    "outputs": {"last_hidden_state": ("float32", [ANY, ANY, 32]), "pooler_output": ("float32", [ANY, 32])},
}
_SCRIPT_VAE_ENCODER = {
    "inputs": {"sample": ("float32", ["batch", "channels", "height", "width"])},
    "outputs": {"latent_sample": ("float32", [ANY, ANY, ANY, ANY])},
}
_SCRIPT_VAE_DECODER = {
    "inputs": {"latent_sample": ("float32", ["batch", "channels", "height", "width"])},
    "outputs": {"sample": ("float32", [ANY, 3, ANY, ANY])},
}


def _script_unet(float_type: str) -> dict:
    return {
        "inputs": {
            "sample": (float_type, ["batch", "channels", "height", "width"]),
            "timestep": (float_type, ["batch"]),
            "encoder_hidden_states": (float_type, ["batch", "sequence", 32]),
        },
        "outputs": {"out_sample": (float_type, [ANY, 4, ANY, ANY])},
    }


def _optimum_text(hidden: int) -> dict:
    return {
        "inputs": {"input_ids": ("int64", ["batch_size", "sequence_length"])},
        "outputs": {
            "last_hidden_state": ("float32", ["batch_size", "sequence_length", hidden]),
            "pooler_output": ("float32", ["batch_size", hidden]),
        },
    }


_OPTIMUM_NEW_VAE = {
    "vae_encoder": {
        "inputs": {"sample": ("float32", ["batch_size", 3, "sample_height", "sample_width"])},
        "outputs": {"latent_parameters": ("float32", ["batch_size", 8, "sample_height / 8", "sample_width / 8"])},
    },
    "vae_decoder": {
        "inputs": {"latent_sample": ("float32", ["batch_size", 4, "latent_height", "latent_width"])},
        "outputs": {"sample": ("float32", ["batch_size", 3, "latent_height * 8", "latent_width * 8"])},
    },
}


def _optimum_new_unet(hidden: int, time_cond: int | None) -> dict:
    inputs = {
        "sample": ("float32", ["batch_size", 4, "height", "width"]),
        "timestep": ("float32", []),
        "encoder_hidden_states": ("float32", ["batch_size", "sequence_length", hidden]),
    }
    if time_cond is not None:
        inputs["timestep_cond"] = ("float32", ["batch_size", time_cond])
    return {"inputs": inputs, "outputs": {"out_sample": ("float32", ["batch_size", 4, "height", "width"])}}


EXPECTED: dict[str, dict[str, dict]] = {
    "tiny-sd1": {
        "text_encoder": _SCRIPT_TEXT,
        "unet": _script_unet("float32"),
        "vae_encoder": _SCRIPT_VAE_ENCODER,
        "vae_decoder": _SCRIPT_VAE_DECODER,
    },
    "tiny-sd1-inpaint": {
        "text_encoder": _SCRIPT_TEXT,
        "unet": _script_unet("float32"),
        "vae_encoder": _SCRIPT_VAE_ENCODER,
        "vae_decoder": _SCRIPT_VAE_DECODER,
    },
    "tiny-sd1-fp16": {
        "text_encoder": {
            "inputs": _SCRIPT_TEXT["inputs"],
            "outputs": {"last_hidden_state": ("float16", [ANY, ANY, 32]), "pooler_output": ("float16", [ANY, 32])},
        },
        "unet": _script_unet("float16"),
        "vae_encoder": {
            "inputs": {"sample": ("float16", ["batch", "channels", "height", "width"])},
            "outputs": {"latent_sample": ("float16", [ANY, ANY, ANY, ANY])},
        },
        "vae_decoder": _SCRIPT_VAE_DECODER,
    },
    "tiny-optimum": {"text_encoder": _optimum_text(32), "unet": _optimum_new_unet(32, None), **_OPTIMUM_NEW_VAE},
    "tiny-sd2-v": {
        "text_encoder": _optimum_text(48),
        "unet": {
            "inputs": {
                "sample": ("float32", ["batch_size", 4, "height", "width"]),
                "timestep": ("int64", ["steps"]),
                "encoder_hidden_states": ("float32", ["batch_size", "sequence_length", 48]),
            },
            "outputs": {"out_sample": ("float32", ["batch_size", 4, "height", "width"])},
        },
        "vae_encoder": {
            "inputs": {"sample": ("float32", ["batch_size", 3, "height", "width"])},
            "outputs": {"latent_sample": ("float32", ["batch_size", ANY, "height_latent", "width_latent"])},
        },
        "vae_decoder": {
            "inputs": {"latent_sample": ("float32", ["batch_size", 4, "height_latent", "width_latent"])},
            "outputs": {"sample": ("float32", ["batch_size", 3, "height", "width"])},
        },
    },
    "tiny-lcm": {"text_encoder": _optimum_text(32), "unet": _optimum_new_unet(32, 24), **_OPTIMUM_NEW_VAE},
}
# The 9-channel UNet's channel axis is symbolic like every diffusers-script export; only a probe run
# (or the user) tells the engine it is 9.

EXPECTED_FILES = {
    "tiny-sd1": {"unet_external": "weights.pb", "config_json": False},
    "tiny-sd1-inpaint": {"unet_external": "weights.pb", "config_json": False},
    "tiny-sd1-fp16": {"unet_external": "weights.pb", "config_json": False},
    "tiny-optimum": {"unet_external": "model.onnx_data", "config_json": True},
    "tiny-sd2-v": {"unet_external": "model.onnx_data", "config_json": True},
    "tiny-lcm": {"unet_external": "model.onnx_data", "config_json": True},
}

_ORT_TO_NAME = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int32)": "int32", "tensor(int64)": "int64"}
_NAME_TO_NP = {"float32": np.float32, "float16": np.float16, "int32": np.int32, "int64": np.int64}


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path.as_posix(), options, providers=["CPUExecutionProvider"])


def signature(sess: ort.InferenceSession) -> dict:
    def describe(args):
        return {a.name: (_ORT_TO_NAME.get(a.type, a.type), [d if d is not None else "?" for d in a.shape]) for a in args}

    return {"inputs": describe(sess.get_inputs()), "outputs": describe(sess.get_outputs())}


def _matches(actual: dict, expected: dict) -> bool:
    if list(actual) != list(expected):
        return False
    for name, (dtype, shape) in expected.items():
        got_dtype, got_shape = actual[name]
        if got_dtype != dtype or len(got_shape) != len(shape):
            return False
        for got, want in zip(got_shape, shape, strict=True):
            if want == ANY:
                if not isinstance(got, str):
                    return False
            elif got != want:
                return False
    return True


def _format_args(args: dict) -> str:
    return ", ".join(f"`{n}` {t} [{', '.join(str(d) for d in s)}]" for n, (t, s) in args.items())


def check_signatures(built: dict[str, BuiltFolder]) -> list[str]:
    """Prints a markdown table of every folder's I/O and raises on any difference from EXPECTED."""
    rows = ["| folder | model | inputs | outputs |", "|---|---|---|---|"]
    problems = []
    for name, folder in built.items():
        for sub in SUBMODELS:
            sig = signature(session(folder.root / sub / "model.onnx"))
            rows.append(f"| {name} | {sub} | {_format_args(sig['inputs'])} | {_format_args(sig['outputs'])} |")
            want = EXPECTED[name][sub]
            for side in ("inputs", "outputs"):
                if not _matches(sig[side], want[side]):
                    problems.append(f"{name}/{sub} {side}: got {sig[side]}, expected {want[side]}")
    print("\n".join(rows))
    if problems:
        raise AssertionError("signature mismatch:\n" + "\n".join(problems))
    return rows


def check_files(built: dict[str, BuiltFolder]) -> None:
    for name, folder in built.items():
        want = EXPECTED_FILES[name]
        unet_files = sorted(p.name for p in (folder.root / "unet").iterdir())
        expected_unet = sorted(["model.onnx", want["unet_external"]] + (["config.json"] if want["config_json"] else []))
        if unet_files != expected_unet:
            raise AssertionError(f"{name}/unet holds {unet_files}, expected {expected_unet}")
        for sub in SUBMODELS:
            has_config = (folder.root / sub / "config.json").exists()
            if has_config != want["config_json"]:
                raise AssertionError(f"{name}/{sub}: config.json present={has_config}, expected {want['config_json']}")
        for required in ("model_index.json", "scheduler/scheduler_config.json", "tokenizer/vocab.json", "tokenizer/merges.txt"):
            if not (folder.root / required).exists():
                raise AssertionError(f"{name}: missing {required}")
    print("files: external data names and config.json presence as expected")


def _feed_for(arg: ort.NodeArg, rng: np.random.Generator, sizes: dict[str, int]) -> np.ndarray:
    dtype = _NAME_TO_NP[_ORT_TO_NAME[arg.type]]
    if arg.name == "input_ids":
        return rng.integers(0, sizes["vocab"], size=(2, 77)).astype(dtype)
    if arg.name == "timestep":
        shape = [] if len(arg.shape) == 0 else [1]
        return np.full(shape, 501, dtype=dtype)
    if arg.name == "sample":  # UNet latents; the channel axis may be symbolic, so it comes from the config
        return rng.standard_normal((2, sizes["unet_channels"], LATENT_SIZE, LATENT_SIZE)).astype(dtype)
    if arg.name == "encoder_hidden_states":
        return rng.standard_normal((2, 77, arg.shape[2])).astype(dtype)
    if arg.name == "timestep_cond":
        return rng.standard_normal((2, arg.shape[1])).astype(dtype)
    raise ValueError(f"no dummy feed for {arg.name}")


@torch.no_grad()
def check_against_torch(built: dict[str, BuiltFolder], vocab_size: int) -> None:
    """Each fp32 UNet, text encoder and VAE decoder must reproduce its torch module; the fp16 ones
    must stay close. Prints the max abs differences."""
    rng = np.random.default_rng(7)
    for name, folder in built.items():
        models = folder.models
        unet_sess = session(folder.root / "unet" / "model.onnx")
        unet_channels = models.unet.config.in_channels
        feeds = {}
        for arg in unet_sess.get_inputs():
            feeds[arg.name] = _feed_for(arg, rng, {"vocab": vocab_size, "unet_channels": unet_channels})
        onnx_out = unet_sess.run(None, feeds)[0].astype(np.float32)
        kwargs = {}
        if "timestep_cond" in feeds:
            kwargs["timestep_cond"] = torch.from_numpy(feeds["timestep_cond"].astype(np.float32))
        ref = models.unet(
            torch.from_numpy(feeds["sample"].astype(np.float32)),
            torch.tensor(float(feeds["timestep"].reshape(-1)[0])),
            torch.from_numpy(feeds["encoder_hidden_states"].astype(np.float32)),
            **kwargs,
        ).sample.numpy()
        unet_diff = float(np.abs(onnx_out - ref).max())

        text_sess = session(folder.root / "text_encoder" / "model.onnx")
        ids_arg = text_sess.get_inputs()[0]
        ids = _feed_for(ids_arg, rng, {"vocab": vocab_size})
        text_out = text_sess.run(None, {"input_ids": ids})[0].astype(np.float32)
        text_ref = models.text_encoder(torch.from_numpy(ids.astype(np.int64))).last_hidden_state.numpy()
        text_diff = float(np.abs(text_out - text_ref).max())

        dec_sess = session(folder.root / "vae_decoder" / "model.onnx")
        latents = rng.standard_normal((1, LATENT_CHANNELS, LATENT_SIZE, LATENT_SIZE)).astype(np.float32)
        dec_out = dec_sess.run(None, {"latent_sample": latents})[0]
        dec_ref = models.vae.decode(torch.from_numpy(latents)).sample.numpy()
        dec_diff = float(np.abs(dec_out - dec_ref).max())

        enc_sess = session(folder.root / "vae_encoder" / "model.onnx")
        enc_arg = enc_sess.get_inputs()[0]
        image = rng.uniform(-1, 1, (1, 3, 64, 64)).astype(_NAME_TO_NP[_ORT_TO_NAME[enc_arg.type]])
        enc_out = enc_sess.run(None, {"sample": image})[0].astype(np.float32)
        dist = models.vae.encode(torch.from_numpy(image.astype(np.float32))).latent_dist
        if enc_sess.get_outputs()[0].name == "latent_parameters":
            enc_diff = float(np.abs(enc_out - dist.parameters.numpy()).max())
            enc_note = "params"
        else:  # sampled in-graph (RandomNormalLike): the standardized output must look like N(0, 1)
            z = (enc_out - dist.mean.numpy()) / dist.std.numpy()
            enc_diff = max(abs(float(z.mean())), abs(float(z.std()) - 1))
            enc_note = f"sample z-score mean {float(z.mean()):+.3f} std {float(z.std()):.3f}"
            if enc_diff > 0.2:
                raise AssertionError(f"{name}: vae_encoder samples do not follow the torch latent distribution")

        limit = 5e-2 if name.endswith("fp16") else 1e-4
        print(
            f"{name:18s} onnx-vs-torch max|diff|: unet {unet_diff:.2e}  text {text_diff:.2e}  "
            f"vae_decoder {dec_diff:.2e}  vae_encoder {enc_note}" + (f" {enc_diff:.2e}" if enc_note == "params" else "")
        )
        if max(unet_diff, text_diff, dec_diff) > limit:
            raise AssertionError(f"{name}: ONNX output differs from torch by more than {limit}")
        if enc_note == "params" and enc_diff > limit:
            raise AssertionError(f"{name}: vae_encoder parameters differ from torch by more than {limit}")


def decoder_saturation(folder: BuiltFolder, scaling_factor: float, seed: int = 11) -> tuple[float, float]:
    """Decode N(0,1) latents the way the pipelines do (divided by the scaling factor) and return the
    8-bit pixel std and the fraction of pixels at 0 or 255."""
    dec = session(folder.root / "vae_decoder" / "model.onnx")
    latents = np.random.default_rng(seed).standard_normal((4, LATENT_CHANNELS, LATENT_SIZE, LATENT_SIZE))
    out = dec.run(None, {"latent_sample": (latents / scaling_factor).astype(np.float32)})[0]
    pixels = (np.clip(out / 2 + 0.5, 0, 1) * 255).round()
    return float(pixels.std()), float(np.mean((pixels == 0) | (pixels == 255)))


def check_decoders(built: dict[str, BuiltFolder]) -> None:
    for name, folder in built.items():
        std, saturated = decoder_saturation(folder, folder.models.vae.config.scaling_factor)
        print(f"{name:18s} decoded N(0,1) latents: pixel std {std:5.1f}/255, {100 * saturated:.2f}% at 0 or 255")
        if not (30 <= std <= 70 and saturated < 0.05):
            raise AssertionError(f"{name}: decoder output is saturated or flat (std {std}, {saturated:.1%} clipped)")


def check_inpaint_pipeline(folder: BuiltFolder) -> None:
    from diffusers import OnnxStableDiffusionInpaintPipeline

    pipe = OnnxStableDiffusionInpaintPipeline.from_pretrained(
        folder.root, provider="CPUExecutionProvider", provider_options={}
    )
    pipe.set_progress_bar_config(disable=True)
    image = Image.fromarray(np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[16:48, 16:48] = 255
    result = pipe(
        prompt="a red apple",
        image=image,
        mask_image=Image.fromarray(mask),
        height=64,
        width=64,
        num_inference_steps=3,
        guidance_scale=7.5,
        generator=np.random.RandomState(0),
        output_type="np",
    ).images
    if result.shape != (1, 64, 64, 3) or not np.isfinite(result).all():
        raise AssertionError(f"inpaint pipeline output {result.shape} is wrong")
    print(f"OnnxStableDiffusionInpaintPipeline on {folder.name}: ran, output {result.shape}, std {result.std() * 255:.1f}/255")
