"""Resumable training loop plumbing: checkpoints (periodic, on SIGTERM/SIGINT, at the end), RNG
state, a JSONL loss log, a time budget per invocation, and the optimisation loop the stages share."""
from __future__ import annotations

import json
import random
import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

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


def resume(state: dict, optimizer: torch.optim.Optimizer, generator: torch.Generator, rng: np.random.Generator,
           reseed: int, label: str) -> tuple[int, int, torch.Generator, np.random.Generator]:
    """Restores the step, the optimizer and the random state of a stage's state.pt (the weights are the
    caller's). Returns (step, restart_step, generator, rng): from a full checkpoint the run goes on where
    it stopped (restart_step 0); from a compact one (weights only, optimizer None) the optimizer starts
    fresh, warms up again from restart_step = step, and the data order is drawn anew from reseed + step."""
    step = state["step"]
    if state["optimizer"] is not None:
        optimizer.load_state_dict(state["optimizer"])
        restore_rng(state["rng"], generator)
        rng.bit_generator.state = state["np_rng"]
        print(f"{label}: resumed at step {step}", flush=True)
        return step, 0, generator, rng
    print(f"{label}: restored weights at step {step} (no optimizer state; warming up again)", flush=True)
    return step, step, seed_everything(reseed + step), np.random.default_rng(reseed + step)


def train_loop(run: RunState, label: str, train_cfg: dict, optimizer: torch.optim.Optimizer, clipped: Iterable[torch.Tensor], *,
               step: int, total: int, lr_at: Callable[[int], float], batch_loss: Callable[[], tuple[torch.Tensor, dict]],
               after_step: Callable[[int], None], validate: Callable[[], float], val_key: str, checkpoint: Callable[[int], None],
               postfix: str = "{loss:.4f}", val_name: str = "val", mininterval: float = 5,
               every_step: Callable[[int], None] | None = None) -> int:
    """Optimizer steps until `total` or until the run must stop (time budget, signal), then a checkpoint.
    Each step sets the learning rate lr_at(step), takes batch_loss() (the loss and figures to log of one
    batch), clips the gradients of `clipped` to train_cfg.grad_clip and calls after_step(new step) (EMA).
    Every log_every_steps the window's mean loss, the learning rate, the batch's figures and (every
    eval_every_steps) validate() under val_key go to the run's log; checkpoint(step) runs when one is due.
    Returns the step reached."""
    bar = tqdm(total=total, initial=step, desc=label, dynamic_ncols=True, mininterval=mininterval)
    window: list[float] = []
    started = time.monotonic()
    while step < total and not run.should_stop():
        lr = lr_at(step)
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        loss, figures = batch_loss()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(clipped, train_cfg["grad_clip"])
        optimizer.step()
        step += 1
        after_step(step)
        window.append(loss.item())
        bar.update(1)
        if step % train_cfg["log_every_steps"] == 0:
            record = {"step": step, "loss": float(np.mean(window)), **{k: float(v) for k, v in figures.items()}, "lr": lr,
                      "elapsed_s": round(time.monotonic() - started, 1)}
            window.clear()
            if step % train_cfg["eval_every_steps"] == 0:
                record[val_key] = validate()
            run.log(record)
            bar.set_postfix({"loss": postfix.format(loss=record["loss"]), val_name: record.get(val_key, "")})
        if run.save_due():
            checkpoint(step)
        if every_step is not None:
            every_step(step)
    bar.close()
    checkpoint(step)
    return step


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
