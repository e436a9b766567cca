"""Stage 1b: derive a small CLIP BPE tokenizer (vocab.json + merges.txt in the exact CLIP format).

Why not the full 49,408-token CLIP vocabulary: its embedding table alone (49,408 × hidden) would be
about as large as the whole U-Net, and almost all of it would never be trained on emoji captions.
So the tokenizer keeps CLIP's byte alphabet (256 byte symbols and their 256 "</w>" forms), the subset
of CLIP's merges, in CLIP's rank order, that CLIP's BPE actually applies to the caption words (plus a
few prompt words such as colours), and the two specials. CLIP's BPE merges the lowest-rank pair
first; every merge it applies to a caption word is kept, so each caption word is split into exactly
the same pieces as the full CLIP tokenizer would split it. Unseen words fall back to shorter pieces
(down to bytes), which is still valid CLIP BPE. Ids follow CLIP's construction: bytes, bytes+"</w>",
merge results in merge order, then <|startoftext|>, <|endoftext|>.

The output is committed (native-models/tokenizer/emoji-ldm/), so rebuilding the models never needs
the full CLIP files; rerun this only when the caption set changes:
  python -m training.build_tokenizer --clip-dir ../../shared/data/clip-tokenizer
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import regex

from .common import load_images
from .config import NATIVE_MODELS_DIR, add_common_args, load_config

TOKENIZER_DIR = NATIVE_MODELS_DIR / "tokenizer"
BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
# CLIP pre-tokenizer pattern (openai/CLIP simple_tokenizer.py), case-insensitive.
CLIP_PATTERN = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE)
# Words users are likely to type that the captions might not contain; recoloured variants use the colours.
EXTRA_WORDS = ("a an the of with and on in at for emoji icon picture "
               "red orange yellow green blue purple pink brown black white gray grey gold silver "
               "light dark small big large happy sad cute").split()


def bytes_to_unicode() -> dict[int, str]:
    """CLIP's reversible byte → printable character map (openai/CLIP simple_tokenizer.py)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def applied_merges(token: str, ranks: dict[tuple[str, str], int]) -> list[tuple[str, str]]:
    """Runs CLIP BPE on one pre-token (byte-encoded) and returns the merges it applied."""
    word = list(token[:-1]) + [token[-1] + "</w>"]
    used = []
    while len(word) > 1:
        pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
        best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if best not in ranks:
            break
        used.append(best)
        merged = []
        i = 0
        while i < len(word):
            if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                merged.append(word[i] + word[i + 1])
                i += 2
            else:
                merged.append(word[i])
                i += 1
        word = merged
    return used


def pre_tokens(text: str, byte_map: dict[int, str]) -> list[str]:
    text = " ".join(text.split()).lower()
    return ["".join(byte_map[b] for b in m.encode("utf-8")) for m in CLIP_PATTERN.findall(text)]


def caption_texts(records: list[dict]) -> list[str]:
    texts = []
    for record in records:
        parts = record["parts"]
        texts.extend([parts["name"], *parts["skin"], *parts["short_names"], parts["category"], parts["subcategory"]])
    return texts + EXTRA_WORDS


def build(clip_dir: Path, texts: list[str], out_dir: Path) -> dict:
    merges_lines = (clip_dir / "merges.txt").read_text(encoding="utf-8").split("\n")
    header, merge_lines = merges_lines[0], [line for line in merges_lines[1:] if line]
    ranks = {tuple(line.split()): i for i, line in enumerate(merge_lines)}
    byte_map = bytes_to_unicode()
    used: set[tuple[str, str]] = set()
    for text in texts:
        for token in pre_tokens(text, byte_map):
            used.update(applied_merges(token, ranks))
    kept = sorted(used, key=lambda p: ranks[p])
    alphabet = list(byte_map.values())
    vocab_list = alphabet + [c + "</w>" for c in alphabet] + ["".join(p) for p in kept] + [BOS, EOS]
    vocab = {token: i for i, token in enumerate(vocab_list)}
    if len(vocab) != len(vocab_list):
        raise AssertionError("duplicate token in the derived vocabulary")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out_dir / "merges.txt").write_text(header + "\n" + "\n".join(" ".join(p) for p in kept) + "\n", encoding="utf-8")
    write_tokenizer_configs(out_dir)
    return {"vocab_size": len(vocab), "merges": len(kept), "bos_id": vocab[BOS], "eos_id": vocab[EOS]}


def write_tokenizer_configs(out_dir: Path) -> None:
    # SD 1.x conventions: pad with <|endoftext|>, 77 tokens (see sd-onnx-reference.md §5).
    special = {"bos_token": BOS, "eos_token": EOS, "pad_token": EOS, "unk_token": EOS}
    (out_dir / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
    config = {"add_prefix_space": False, "do_lower_case": True, "errors": "replace", "model_max_length": 77,
              "tokenizer_class": "CLIPTokenizer", **special}
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


def verify(clip_dir: Path, out_dir: Path, texts: list[str]) -> None:
    """Every caption must split into the same pieces as with the full CLIP tokenizer (HF CLIPTokenizer)."""
    from transformers import CLIPTokenizer
    full = CLIPTokenizer.from_pretrained(str(clip_dir))
    small = CLIPTokenizer.from_pretrained(str(out_dir))
    for text in texts:
        if full.tokenize(text) != small.tokenize(text):
            raise AssertionError(f"tokenization differs for {text!r}: {full.tokenize(text)} vs {small.tokenize(text)}")
    ids = small("red apple", padding="max_length", max_length=77).input_ids
    if ids[0] != small.convert_tokens_to_ids(BOS) or len(ids) != 77:
        raise AssertionError(f"unexpected ids {ids[:8]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_args(parser)
    parser.add_argument("--clip-dir", type=Path, required=True, help="folder with CLIP's vocab.json and merges.txt")
    parser.add_argument("--out-dir", type=Path, default=None)
    args = parser.parse_args()
    cfg = load_config(args)
    _, records = load_images(cfg.data_dir)
    texts = caption_texts(records) + [r["caption"] for r in records]
    out_dir = args.out_dir or TOKENIZER_DIR / cfg.name
    summary = build(args.clip_dir, texts, out_dir)
    verify(args.clip_dir, out_dir, texts)
    print(json.dumps({**summary, "out_dir": str(out_dir), "verified_texts": len(texts)}))


if __name__ == "__main__":
    main()
