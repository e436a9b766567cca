"""Checkpoint pack/unpack (training/checkpoints.py): a work folder's VAE and text-to-image stage packed to
fp16 safetensors + JSON, and unpacked into an empty work folder as training resumes from it."""
import json

import pytest
import torch

from training.checkpoints import pack, unpack
from training.common import DONE_FILE
from training.config import Config


def tiny_state(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"conv.weight": torch.randn(4, 3, generator=g), "conv.bias": torch.randn(4, generator=g), "steps": torch.tensor([7])}


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"name": "tiny", "unet": {"channels": 8}, "text_encoder": {"width": 4}, "train_unet": {"ema_decay": 0.99}}))
    return path


def work_folder(config_file, tmp_path, name):
    return Config(config_file, toy=False, work_dir=tmp_path / name)


def write_stages(cfg):
    vae = cfg.runs_dir / "vae"
    vae.mkdir(parents=True)
    torch.save({"model": tiny_state(1), "config": {"scaling_factor": 0.5}}, vae / "vae.pt")
    (vae / DONE_FILE).write_text(json.dumps({"steps": 3}))
    unet = cfg.runs_dir / "unet"
    unet.mkdir(parents=True)
    torch.save({"unet": tiny_state(2), "text_encoder": tiny_state(3), "step": 11, "vae_digest": "abc"}, unet / "unet.pt")


def as_fp16(state):
    return {k: v.half().float() if v.dtype == torch.float32 else v for k, v in state.items()}


def test_pack_then_unpack_restores_the_weights_at_fp16(config_file, tmp_path):
    source = work_folder(config_file, tmp_path, "source")
    write_stages(source)
    packed = tmp_path / "checkpoints"
    summary = pack(source, packed)
    assert summary == {"vae": {"steps": 3}, "text2img": {"step": 11, "finished": True}}
    assert sorted(p.name for p in packed.iterdir()) == ["text2img.json", "text2img.safetensors", "vae.json", "vae.safetensors"]

    target = work_folder(config_file, tmp_path, "target")
    assert unpack(target, packed) == {"vae": "restored", "text2img": "restored at step 11"}
    vae = torch.load(target.runs_dir / "vae" / "vae.pt", weights_only=False)
    assert vae["config"] == {"scaling_factor": 0.5}
    for k, v in as_fp16(tiny_state(1)).items():
        assert torch.equal(vae["model"][k], v), k
        assert vae["model"][k].dtype == v.dtype
    assert json.loads((target.runs_dir / "vae" / DONE_FILE).read_text())["steps"] == 3

    state = torch.load(target.runs_dir / "unet" / "state.pt", weights_only=False)
    assert (state["step"], state["vae_digest"], state["optimizer"]) == (11, "abc", None)
    for part, seed in (("unet", 2), ("text_encoder", 3)):
        for k, v in as_fp16(tiny_state(seed)).items():
            assert torch.equal(state[part][k], v), (part, k)
    # Training resumes from the EMA weights: the shadows start as the weights, with the config's decay.
    assert state["unet_ema"]["decay"] == 0.99
    assert all(torch.equal(state["unet_ema"]["shadow"][k], state["unet"][k]) for k in state["unet"])


def test_unpack_fills_only_what_the_work_folder_lacks(config_file, tmp_path):
    source = work_folder(config_file, tmp_path, "source")
    write_stages(source)
    packed = tmp_path / "checkpoints"
    pack(source, packed)
    # A work folder whose VAE is done already: it is kept, and only the U-Net stage is restored.
    target = work_folder(config_file, tmp_path, "target")
    (target.runs_dir / "vae").mkdir(parents=True)
    (target.runs_dir / "vae" / DONE_FILE).write_text(json.dumps({"steps": 99}))
    assert unpack(target, packed) == {"text2img": "restored at step 11"}
    assert not (target.runs_dir / "vae" / "vae.pt").exists()
    assert unpack(target, packed) == {}, "a second unpack has nothing left to do"


def test_pack_of_a_running_stage_takes_the_ema_weights(config_file, tmp_path):
    source = work_folder(config_file, tmp_path, "source")
    unet = source.runs_dir / "unet"
    unet.mkdir(parents=True)
    torch.save({"unet": tiny_state(5), "text_encoder": tiny_state(6), "unet_ema": {"shadow": tiny_state(7)},
                "te_ema": {"shadow": tiny_state(8)}, "step": 4, "vae_digest": "abc"}, unet / "state.pt")
    packed = tmp_path / "checkpoints"
    assert pack(source, packed) == {"text2img": {"step": 4, "finished": False}}
    target = work_folder(config_file, tmp_path, "target")
    unpack(target, packed)
    state = torch.load(target.runs_dir / "unet" / "state.pt", weights_only=False)
    assert all(torch.equal(state["unet"][k], v) for k, v in as_fp16(tiny_state(7)).items())
