"""Config files and work-folder paths shared by every stage.

A config is one JSON file (configs/emoji-ldm.json). Its optional "toy" section is deep-merged over
the rest when a stage runs with --toy, so the CI smoke test runs the same code at toy size in a
separate work folder.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
from pathlib import Path
from typing import Any

NATIVE_MODELS_DIR = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = NATIVE_MODELS_DIR / "configs" / "emoji-ldm.json"


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class Config:
    """A loaded config plus the folders a run reads and writes."""

    def __init__(self, path: Path, toy: bool, work_dir: Path | None = None):
        raw = json.loads(Path(path).read_text())
        toy_overrides = raw.pop("toy", {})
        self.raw = deep_merge(raw, toy_overrides) if toy else raw
        self.toy = toy
        self.path = Path(path)
        name = self.raw["name"]
        base_work = NATIVE_MODELS_DIR / ".work"
        self.work_dir = Path(work_dir) if work_dir else base_work / (f"{name}-toy" if toy else name)
        # The source package is shared by toy and full runs: it never changes for a pinned version.
        self.download_dir = base_work / "downloads"
        self.data_dir = self.work_dir / "data"
        self.runs_dir = self.work_dir / "runs"
        default_export = self.work_dir / "export" if toy else NATIVE_MODELS_DIR
        self.export_root = Path(os.environ.get("EMOJI_LDM_EXPORT_ROOT", default_export))
        self.name = name

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    @property
    def export_dir(self) -> Path:
        return self.export_root / self.name

    @property
    def inpaint_export_dir(self) -> Path:
        return self.export_root / f"{self.name}-inpaint"

    @property
    def layout_export_dir(self) -> Path:
        return self.export_root / f"{self.name}-layout"

    @property
    def lcm_export_dir(self) -> Path:
        return self.export_root / f"{self.name}-lcm"

    @property
    def inpaint_lcm_export_dir(self) -> Path:
        return self.export_root / f"{self.name}-inpaint-lcm"

    def stage_dir(self, stage: str) -> Path:
        path = self.runs_dir / stage
        path.mkdir(parents=True, exist_ok=True)
        return path


def lcm_stage_value(train_lcm: dict[str, Any], key: str, stage: str) -> Any:
    """A train_lcm value for one distillation stage ("text2img" or "inpaint"): one value for both, or
    {"text2img": a, "inpaint": b} (steps, num_ddim_timesteps)."""
    value = train_lcm[key]
    return value[stage] if isinstance(value, dict) else value


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="config JSON file")
    parser.add_argument("--toy", action="store_true", help="run at toy size (CI smoke test)")
    parser.add_argument("--work-dir", type=Path, default=None, help="override the work folder")


def load_config(args: argparse.Namespace) -> Config:
    return Config(args.config, toy=args.toy, work_dir=args.work_dir)
