"""A tiny CLIP BPE vocabulary in the exact file format that Stable Diffusion folders ship in `tokenizer/`.

CLIP builds its vocabulary (openai/CLIP `clip/simple_tokenizer.py::SimpleTokenizer.__init__`) as:
the 256 byte symbols in `bytes_to_unicode()` order, the same 256 symbols with "</w>" appended, one
token per merge (the two halves joined, in merge order), then `<|startoftext|>` and `<|endoftext|>`.
Taking only the first N merges of the real merges.txt gives a smaller vocabulary with the same
structure: every id below 512 + N is the id the full CLIP vocabulary gives that token.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
# SD 2.x tokenizers pad with "!" (id 0) instead of EOS (stabilityai/stable-diffusion-2 tokenizer/).
SD2_PAD_TOKEN = "!"
MODEL_MAX_LENGTH = 77
MERGES_HEADER = "#version: 0.2"


def bytes_to_unicode() -> dict[int, str]:
    """The byte → printable character table of openai/CLIP simple_tokenizer.py (also GPT-2)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


@dataclass(frozen=True)
class TinyVocabulary:
    tokens: list[str]  # index = token id
    merges: list[tuple[str, str]]

    @property
    def size(self) -> int:
        return len(self.tokens)

    @property
    def bos_id(self) -> int:
        return self.tokens.index(BOS_TOKEN)

    @property
    def eos_id(self) -> int:
        return self.tokens.index(EOS_TOKEN)


def build_tiny_vocabulary(full_merges_path: Path, merge_count: int) -> TinyVocabulary:
    lines = full_merges_path.read_text(encoding="utf-8").split("\n")
    if lines[0] != MERGES_HEADER:
        raise ValueError(f"{full_merges_path}: expected first line {MERGES_HEADER!r}, got {lines[0]!r}")
    merges = [tuple(line.split(" ")) for line in lines[1 : 1 + merge_count]]
    for merge in merges:
        if len(merge) != 2:
            raise ValueError(f"{full_merges_path}: malformed merge line {' '.join(merge)!r}")
    byte_symbols = list(bytes_to_unicode().values())
    tokens = byte_symbols + [s + "</w>" for s in byte_symbols] + ["".join(m) for m in merges] + [BOS_TOKEN, EOS_TOKEN]
    if len(set(tokens)) != len(tokens):
        raise ValueError("tiny vocabulary has duplicate tokens")
    return TinyVocabulary(tokens=tokens, merges=[(a, b) for a, b in merges])


def check_against_full_vocabulary(vocab: TinyVocabulary, full_vocab_path: Path) -> None:
    """Every non-special tiny token must carry the id the real CLIP vocabulary gives it."""
    full = json.loads(full_vocab_path.read_text(encoding="utf-8"))
    for token_id, token in enumerate(vocab.tokens[:-2]):
        if full.get(token) != token_id:
            raise ValueError(f"token {token!r}: tiny id {token_id} != full CLIP id {full.get(token)}")


def _added_token(content: str, with_type: bool) -> dict:
    token = {"content": content, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}
    return {"__type": "AddedToken", **token} if with_type else token


def write_tokenizer_folder(folder: Path, vocab: TinyVocabulary, pad_token: str) -> None:
    """vocab.json, merges.txt, special_tokens_map.json, tokenizer_config.json as the SD 1.x/2.x repos ship them
    (slow CLIPTokenizer save format: AddedToken dicts for bos/eos/unk, pad as a plain string)."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab_json = {token: token_id for token_id, token in enumerate(vocab.tokens)}
    (folder / "vocab.json").write_text(json.dumps(vocab_json, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text(
        "\n".join([MERGES_HEADER] + [f"{a} {b}" for a, b in vocab.merges]) + "\n", encoding="utf-8"
    )
    special_tokens_map = {
        "bos_token": _added_token(BOS_TOKEN, with_type=False),
        "eos_token": _added_token(EOS_TOKEN, with_type=False),
        "pad_token": pad_token,
        "unk_token": _added_token(EOS_TOKEN, with_type=False),
    }
    (folder / "special_tokens_map.json").write_text(json.dumps(special_tokens_map, indent=2) + "\n", encoding="utf-8")
    tokenizer_config = {
        "add_prefix_space": False,
        "bos_token": _added_token(BOS_TOKEN, with_type=True),
        "do_lower_case": True,
        "eos_token": _added_token(EOS_TOKEN, with_type=True),
        "errors": "replace",
        "model_max_length": MODEL_MAX_LENGTH,
        "pad_token": pad_token,
        "special_tokens_map_file": "./special_tokens_map.json",
        "tokenizer_class": "CLIPTokenizer",
        "unk_token": _added_token(EOS_TOKEN, with_type=True),
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n", encoding="utf-8")
