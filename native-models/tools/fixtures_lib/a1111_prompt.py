"""A Python port of AUTOMATIC1111's prompt handling, written for the golden tests of electron/engine/prompt/.

It restates, in our own code, the behaviour of stable-diffusion-webui (v1.10.1, commit 82a973c0):
- `modules/prompt_parser.py` `parse_prompt_attention`: the bracket grammar, BREAK, merging;
- `modules/sd_hijack_clip.py` `FrozenCLIPEmbedderWithCustomWordsBase.tokenize_line`: 75-token chunks,
  BOS/EOS wrapping, EOS padding, the comma backtrack, BREAK and embedding placement;
- `process_tokens`: the SD 2.x padding rule (every position after the first EOS becomes the pad id);
- `modules/sd_emphasis.py` `EmphasisOriginal`: weights, then the mean restored.

The tokenizer is the caller's (transformers' CLIPTokenizer, called as A1111 calls it:
`tokenizer(texts, truncation=False, add_special_tokens=False)`), so the goldens also check that the
engine's own BPE gives the same ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

CHUNK_LENGTH = 75
DEFAULT_COMMA_BACKTRACK = 20  # A1111 option comma_padding_backtrack
ROUND_MULTIPLIER = 1.1
SQUARE_MULTIPLIER = 1 / 1.1

_ATTENTION = re.compile(
    r"""
\\\(|
\\\)|
\\\[|
\\]|
\\\\|
\\|
\(|
\[|
:\s*([+-]?[.\d]+)\s*\)|
\)|
]|
[^\\()\[\]:]+|
:
""",
    re.X,
)
_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)


def parse_prompt_attention(text: str) -> list[list]:
    """[[fragment, weight], ...]; BREAK is the marker ["BREAK", -1]."""
    res: list[list] = []
    round_brackets: list[int] = []
    square_brackets: list[int] = []

    def multiply_range(start: int, multiplier: float) -> None:
        for p in range(start, len(res)):
            res[p][1] *= multiplier

    for m in _ATTENTION.finditer(text):
        t = m.group(0)
        weight = m.group(1)
        if t.startswith("\\"):
            res.append([t[1:], 1.0])
        elif t == "(":
            round_brackets.append(len(res))
        elif t == "[":
            square_brackets.append(len(res))
        elif weight is not None and round_brackets:
            multiply_range(round_brackets.pop(), float(weight))
        elif t == ")" and round_brackets:
            multiply_range(round_brackets.pop(), ROUND_MULTIPLIER)
        elif t == "]" and square_brackets:
            multiply_range(square_brackets.pop(), SQUARE_MULTIPLIER)
        else:
            parts = _BREAK.split(t)
            for i, part in enumerate(parts):
                if i > 0:
                    res.append(["BREAK", -1])
                res.append([part, 1.0])

    for pos in round_brackets:
        multiply_range(pos, ROUND_MULTIPLIER)
    for pos in square_brackets:
        multiply_range(pos, SQUARE_MULTIPLIER)

    if not res:
        res = [["", 1.0]]

    i = 0
    while i + 1 < len(res):
        if res[i][1] == res[i + 1][1]:
            res[i][0] += res[i + 1][0]
            res.pop(i + 1)
        else:
            i += 1
    return res


@dataclass
class Embedding:
    name: str
    vectors: int


@dataclass
class Chunk:
    tokens: list[int] = field(default_factory=list)
    multipliers: list[float] = field(default_factory=list)
    fixes: list[tuple[int, str]] = field(default_factory=list)  # (offset after BOS, embedding name)


@dataclass
class TokenizerSpec:
    tokenize: Callable[[list[str]], list[list[int]]]
    bos: int
    eos: int
    pad: int
    comma: int


class EmbeddingLookup:
    """`EmbeddingDatabase.find_embedding_at_position`: keyed by the first id of the tokenized name, longest first."""

    def __init__(self, tok: TokenizerSpec, embeddings: Sequence[Embedding]):
        self.ids: dict[int, list[tuple[list[int], Embedding]]] = {}
        for emb in embeddings:
            ids = tok.tokenize([emb.name])[0]
            self.ids.setdefault(ids[0], []).append((ids, emb))
            self.ids[ids[0]] = sorted(self.ids[ids[0]], key=lambda x: len(x[0]), reverse=True)

    def find(self, tokens: list[int], offset: int) -> tuple[Embedding | None, int | None]:
        for ids, emb in self.ids.get(tokens[offset], []):
            if tokens[offset : offset + len(ids)] == ids:
                return emb, len(ids)
        return None, None


def tokenize_line(
    line: str,
    tok: TokenizerSpec,
    comma_backtrack: int = DEFAULT_COMMA_BACKTRACK,
    embeddings: EmbeddingLookup | None = None,
) -> tuple[list[Chunk], int]:
    parsed = parse_prompt_attention(line)
    tokenized = tok.tokenize([text for text, _ in parsed])
    chunks: list[Chunk] = []
    chunk = Chunk()
    token_count = 0
    last_comma = -1

    def next_chunk(is_last: bool = False) -> None:
        nonlocal token_count, last_comma, chunk
        token_count += len(chunk.tokens) if is_last else CHUNK_LENGTH
        to_add = CHUNK_LENGTH - len(chunk.tokens)
        if to_add > 0:
            chunk.tokens += [tok.eos] * to_add
            chunk.multipliers += [1.0] * to_add
        chunk.tokens = [tok.bos] + chunk.tokens + [tok.eos]
        chunk.multipliers = [1.0] + chunk.multipliers + [1.0]
        last_comma = -1
        chunks.append(chunk)
        chunk = Chunk()

    for tokens, (text, weight) in zip(tokenized, parsed, strict=True):
        if text == "BREAK" and weight == -1:
            next_chunk()
            continue
        position = 0
        while position < len(tokens):
            token = tokens[position]
            if token == tok.comma:
                last_comma = len(chunk.tokens)
            elif (
                comma_backtrack != 0
                and len(chunk.tokens) == CHUNK_LENGTH
                and last_comma != -1
                and len(chunk.tokens) - last_comma <= comma_backtrack
            ):
                cut = last_comma + 1
                moved_tokens, moved_mults = chunk.tokens[cut:], chunk.multipliers[cut:]
                chunk.tokens, chunk.multipliers = chunk.tokens[:cut], chunk.multipliers[:cut]
                next_chunk()
                chunk.tokens, chunk.multipliers = moved_tokens, moved_mults
            if len(chunk.tokens) == CHUNK_LENGTH:
                next_chunk()
            emb, emb_len = embeddings.find(tokens, position) if embeddings else (None, None)
            if emb is None:
                chunk.tokens.append(token)
                chunk.multipliers.append(weight)
                position += 1
                continue
            if len(chunk.tokens) + emb.vectors > CHUNK_LENGTH:
                next_chunk()
            chunk.fixes.append((len(chunk.tokens), emb.name))
            chunk.tokens += [0] * emb.vectors
            chunk.multipliers += [weight] * emb.vectors
            position += emb_len

    if chunk.tokens or not chunks:
        next_chunk(is_last=True)
    return chunks, token_count


def padded_tokens(chunk: Chunk, tok: TokenizerSpec) -> list[int]:
    """`process_tokens`: for a tokenizer whose pad id is not EOS, every position after the first EOS is the pad id."""
    tokens = list(chunk.tokens)
    if tok.eos != tok.pad:
        first = tokens.index(tok.eos)
        tokens[first + 1 :] = [tok.pad] * (len(tokens) - first - 1)
    return tokens


def emphasis_original(z, multipliers):
    """sd_emphasis.EmphasisOriginal on one chunk: z [B, 77, C] (torch), multipliers [B, 77]."""
    original_mean = z.mean()
    z = z * multipliers.reshape(multipliers.shape + (1,)).expand(z.shape)
    new_mean = z.mean()
    return z * (original_mean / new_mean)
