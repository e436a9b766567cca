"""The SDXL architecture presets convert.py writes for single files (tools/convert_lib/presets.py): built on
the meta device (no weights), each model has the parameter count of the released one, so from_single_file
gets the architecture the checkpoint's weights were trained in."""
import json
import sys
from pathlib import Path

import pytest
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

sys.path.insert(0, (Path(__file__).resolve().parents[1] / "tools").as_posix())
from convert_lib.presets import write_preset_config  # noqa: E402

# stabilityai/stable-diffusion-xl-base-1.0: U-Net 2.57 B, VAE 83.7 M, CLIP ViT-L text 123 M, OpenCLIP bigG text 695 M.
SDXL_BASE = {"unet": 2_567_463_684, "vae": 83_653_863, "text_encoder": 123_060_480, "text_encoder_2": 694_659_840}


def parameters(folder: Path) -> dict[str, int]:
    with init_empty_weights():
        models = {
            "unet": UNet2DConditionModel.from_config(json.loads((folder / "unet" / "config.json").read_text())),
            "vae": AutoencoderKL.from_config(json.loads((folder / "vae" / "config.json").read_text())),
            "text_encoder_2": CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(folder / "text_encoder_2")),
        }
        if (folder / "text_encoder").is_dir():
            models["text_encoder"] = CLIPTextModel(CLIPTextConfig.from_pretrained(folder / "text_encoder"))
    return {name: sum(p.numel() for p in m.parameters()) for name, m in models.items()}


@pytest.mark.parametrize(("preset", "unet_extra"), [("sdxl", 0), ("sdxl-inpainting", 5 * 320 * 3 * 3)])
def test_sdxl_base_presets_have_the_released_sizes(tmp_path, preset, unet_extra):
    counts = parameters(write_preset_config(preset, tmp_path / preset))
    assert counts == {**SDXL_BASE, "unet": SDXL_BASE["unet"] + unet_extra}  # inpainting: 5 more conv_in channels


def test_sdxl_refiner_preset_has_bigG_only_and_the_aesthetic_time_ids(tmp_path):
    folder = write_preset_config("sdxl-refiner", tmp_path / "refiner")
    index = json.loads((folder / "model_index.json").read_text())
    assert index["text_encoder"] == [None, None] and index["requires_aesthetics_score"] is True
    counts = parameters(folder)
    assert "text_encoder" not in counts and counts["text_encoder_2"] == SDXL_BASE["text_encoder_2"]
    unet = json.loads((folder / "unet" / "config.json").read_text())
    assert unet["projection_class_embeddings_input_dim"] == 5 * unet["addition_time_embed_dim"] + 1280
