"""Writing the tokenizer/ folder in the files the engine reads: vocab.json, merges.txt,
special_tokens_map.json, tokenizer_config.json (the SD repos' slow-tokenizer format).

transformers 5 saves a CLIPTokenizer as tokenizer.json only, so when the source folder has no
vocab.json/merges.txt to copy, both are taken from the tokenizer's BPE model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .sources import ConversionError

MERGES_HEADER = "#version: 0.2"
SLOW_TOKENIZER_FILES = ("vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json")


def _token_text(token) -> str:
    return token if isinstance(token, str) else str(getattr(token, "content", token))


def write_tokenizer_folder(tokenizer, out: Path, source_dir: Path | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if source_dir is not None and (source_dir / "vocab.json").is_file() and (source_dir / "merges.txt").is_file():
        for name in SLOW_TOKENIZER_FILES:
            if (source_dir / name).is_file():
                shutil.copyfile(source_dir / name, out / name)
        if (out / "special_tokens_map.json").is_file() or (out / "tokenizer_config.json").is_file():
            return
    else:
        backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
        if backend is None:
            raise ConversionError("the tokenizer has neither vocab.json/merges.txt files nor a BPE model to take them from")
        model = json.loads(backend.to_str())["model"]
        if model.get("type") != "BPE":
            raise ConversionError(f"expected a BPE (CLIP) tokenizer, found {model.get('type')}")
        vocab = dict(sorted(model["vocab"].items(), key=lambda kv: kv[1]))
        merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
        (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        (out / "merges.txt").write_text("\n".join([MERGES_HEADER, *merges]) + "\n", encoding="utf-8")
    pad = _token_text(tokenizer.pad_token) if tokenizer.pad_token is not None else "<|endoftext|>"
    special = {
        "bos_token": _token_text(tokenizer.bos_token),
        "eos_token": _token_text(tokenizer.eos_token),
        "unk_token": _token_text(tokenizer.unk_token),
        "pad_token": pad,
    }
    (out / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n", encoding="utf-8")
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": int(tokenizer.model_max_length), **special}
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
