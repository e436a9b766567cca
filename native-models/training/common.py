"""Resumable training loop plumbing: checkpoints (periodic, on SIGTERM/SIGINT, at the end), RNG
state, a JSONL loss log and a time budget per invocation."""
from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

STATE_FILE = "state.pt"
DONE_FILE = "done.json"
LOG_FILE = "log.jsonl"


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


class StopRequested:
    """Turns SIGTERM/SIGINT into a flag so the loop can save a checkpoint and exit cleanly."""

    def __init__(self) -> None:
        self.requested = False
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, _frame: Any) -> None:
        print(f"\nsignal {signum}: saving a checkpoint and stopping", flush=True)
        self.requested = True


class RunState:
    """Owns one stage's folder: resume, periodic save, loss log, done marker."""

    def __init__(self, stage_dir: Path, save_every_minutes: float, max_minutes: float | None):
        self.dir = stage_dir
        self.state_path = stage_dir / STATE_FILE
        self.log_path = stage_dir / LOG_FILE
        self.save_every_s = save_every_minutes * 60
        self.deadline = time.monotonic() + max_minutes * 60 if max_minutes else None
        self.last_save = time.monotonic()
        self.stop = StopRequested()

    @property
    def done(self) -> bool:
        return (self.dir / DONE_FILE).exists()

    def load(self) -> dict | None:
        if not self.state_path.exists():
            return None
        return torch.load(self.state_path, map_location="cpu", weights_only=False)

    def save(self, state: dict) -> None:
        atomic_save(state, self.state_path)
        self.last_save = time.monotonic()

    def save_due(self) -> bool:
        return time.monotonic() - self.last_save >= self.save_every_s

    def should_stop(self) -> bool:
        out_of_time = self.deadline is not None and time.monotonic() >= self.deadline
        return self.stop.requested or out_of_time

    def log(self, record: dict) -> None:
        with self.log_path.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def mark_done(self, summary: dict) -> None:
        (self.dir / DONE_FILE).write_text(json.dumps(summary, indent=1))


def rng_state(generator: torch.Generator) -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "generator": generator.get_state()}


def restore_rng(state: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    generator.set_state(state["generator"])


class EMA:
    """Exponential moving average of a module's parameters (the weights that get exported)."""

    def __init__(self, module: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in module.state_dict().items()}

    @torch.no_grad()
    def update(self, module: torch.nn.Module, step: int) -> None:
        # Warm-up as in diffusers EMAModel: decay = min(decay, (1 + step) / (10 + step)).
        decay = min(self.decay, (1 + step) / (10 + step))
        for key, value in module.state_dict().items():
            shadow = self.shadow[key]
            if value.dtype.is_floating_point:
                shadow.mul_(decay).add_(value.detach(), alpha=1 - decay)
            else:
                shadow.copy_(value)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.decay = state["decay"]
        self.shadow = state["shadow"]


def load_images(data_dir: Path) -> tuple[np.ndarray, list[dict]]:
    images = np.load(data_dir / "images.npy")
    records = json.loads((data_dir / "records.json").read_text())
    return images, records


def to_model_range(images_uint8: np.ndarray) -> torch.Tensor:
    """uint8 NHWC → float NCHW in [-1, 1] (the SD convention, image·2 − 1)."""
    x = torch.from_numpy(images_uint8).permute(0, 3, 1, 2).float() / 127.5
    return x - 1.0


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per image for tensors in [-1, 1], computed on the [0, 1] scale after clipping."""
    a01 = (a.clamp(-1, 1) + 1) / 2
    b01 = (b.clamp(-1, 1) + 1) / 2
    mse = (a01 - b01).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return -10 * torch.log10(mse)
