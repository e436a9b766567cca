"""Golden values for the engine's A1111 prompt parser and chunker (electron/engine/prompt/).

Run:  native-models/.venv/bin/python native-models/tools/make_prompt_goldens.py
Writes test/fixtures/prompts/goldens.json (read by test/unit/engine/prompt/*.test.ts).

Each case runs fixtures_lib/a1111_prompt.py (our port of A1111's parse_prompt_attention and tokenize_line)
with transformers' CLIPTokenizer on the full CLIP vocabulary (native-models/tools/convert_lib/clip_tokenizer,
the vocabulary every SD 1.x/2.x folder ships), for the SD 1.x padding (pad = EOS) and the SD 2.x padding
(pad "!" = id 0). A case records the parsed fragments, every chunk's 77 ids (after the SD 2.x padding
rule) and multipliers, the embedding placements and A1111's token count, or the error A1111 raises.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from transformers import CLIPTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixtures_lib.a1111_prompt import (  # noqa: E402
    Embedding,
    EmbeddingLookup,
    TokenizerSpec,
    padded_tokens,
    parse_prompt_attention,
    tokenize_line,
)

ROOT = Path(__file__).resolve().parents[2]
VOCAB_DIR = ROOT / "native-models/tools/convert_lib/clip_tokenizer"
OUT = ROOT / "test/fixtures/prompts/goldens.json"

cat60 = " ".join(["cat"] * 60)
dog20 = " ".join(["dog"] * 20)
words = "red green blue yellow black white orange purple pink brown".split()


def n_words(n: int, offset: int = 0) -> str:
    return " ".join(words[(i + offset) % len(words)] for i in range(n))


# (prompt, options). options: sd2 (pad "!"), backtrack (default 20), embeddings [(name, vectors)].
CASES: list[tuple[str, dict]] = [
    # --- attention: plain, round, square, explicit weights ---
    ("normal text", {}),
    ("an (important) word", {}),
    ("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).", {}),
    ("(masterpiece:1.2), ((best quality)), [blurry]", {}),
    ("[[[faded]]] colours", {}),
    ("((((deep))))", {}),
    ("(a:0)", {}),
    ("(a:-1) b", {}),
    ("(a:2.5) and (b:0.25)", {}),
    ("(word : 1.2 )", {}),
    ("(a: 1.5)", {}),
    ("(a:+1.5)", {}),
    ("(a:.5)", {}),
    ("(a:1.)", {}),
    ("(a:1.2:3)", {}),
    ("(a:b)", {}),
    ("[a:0.5]", {}),
    ("a ((b:1.2) c:0.5) d", {}),
    ("(a [b) c]", {}),
    ("x :1.5) y", {}),
    ("a : b : c", {}),
    ("((a:1.5)", {}),
    # --- unbalanced and stray brackets ---
    ("(unbalanced", {}),
    ("[unbalanced", {}),
    ("((two open", {}),
    ("a ) b ] c", {}),
    ("[(mixed open", {}),
    ("close first ) then (open", {}),
    # --- escapes ---
    ("\\(literal\\] and \\\\ backslash", {}),
    ("\\[not weighted\\]", {}),
    ("a\\b lone backslash", {}),
    ("trailing backslash\\", {}),
    ("(escaped \\) inside)", {}),
    # --- merging of equal weights ---
    ("(a:1.5) (b:1.5)", {}),
    ("(a:1.5)(b:1.5)", {}),
    ("(a)(b)", {}),
    ("((a))(b:1.21)", {}),
    # --- empty ---
    ("", {}),
    ("()", {}),
    ("(:1.5)", {}),
    ("   ", {}),
    ("[]", {}),
    # --- BREAK ---
    ("cat BREAK dog", {}),
    ("(cat BREAK dog)", {}),
    ("aBREAKb", {}),
    ("BREAK", {}),
    ("BREAK cat", {}),
    ("cat BREAK", {}),
    ("cat BREAK BREAK dog", {}),
    ("cat break dog", {}),
    ("cat\nBREAK\ndog", {}),
    ("a, BREAK, b", {}),
    (n_words(75) + " BREAK dog", {}),
    (n_words(74) + " BREAK dog", {}),
    (n_words(75) + " BREAK", {}),
    # --- chunk lengths ---
    (n_words(74), {}),
    (n_words(75), {}),
    (n_words(76), {}),
    (n_words(150), {}),
    (n_words(151), {}),
    (n_words(200), {}),
    ("(" + n_words(80) + ":1.3)", {}),
    # --- comma backtrack ---
    (cat60 + " , " + dog20, {}),
    (cat60 + " , " + dog20, {"backtrack": 0}),
    (cat60 + " , " + dog20, {"backtrack": 10}),
    (n_words(54) + ", " + n_words(30), {}),  # comma 21 tokens before the end: no backtrack
    (n_words(55) + ", " + n_words(30), {}),  # comma 20 tokens before the end: backtrack
    (n_words(74) + ", " + n_words(10), {}),  # comma as the 75th token
    (n_words(75) + ", " + n_words(10), {}),  # comma finds the chunk full
    (n_words(70) + ", (" + n_words(10) + ":1.4)", {}),
    ("(" + n_words(70) + "), [" + n_words(10) + "]", {}),
    (", ".join(n_words(4, i) for i in range(40)), {}),
    (n_words(60) + ", " + n_words(5) + ", " + n_words(20), {}),
    # --- SD 2.x padding ---
    ("a (red:1.3) cat", {"sd2": True}),
    ("", {"sd2": True}),
    (n_words(75), {"sd2": True}),
    (n_words(80), {"sd2": True}),
    ("cat BREAK dog", {"sd2": True}),
    ("BREAK", {"sd2": True}),
    # --- textual-inversion embeddings ---
    ("a photo of myemb", {"embeddings": [("myemb", 1)]}),
    ("a photo of (myemb:1.3)", {"embeddings": [("myemb", 3)]}),
    (" ".join(["cat"] * 70) + " myemb dog", {"embeddings": [("myemb", 8)]}),
    ("MyEmb in capitals", {"embeddings": [("myemb", 2)]}),
    ("easynegative, bad_hands", {"embeddings": [("easynegative", 4), ("bad_hands", 2)]}),
    ("bad bad_hands", {"embeddings": [("bad", 1), ("bad_hands", 2)]}),
    ("my(emb)", {"embeddings": [("myemb", 1)]}),
    # --- real-world A1111 prompts ---
    ("masterpiece, best quality, (ultra-detailed:1.1), 1girl, solo, [[lowres]], (((cinematic lighting)))", {}),
    ("(EasyNegative:1.2), (worst quality, low quality:1.4), lowres, bad anatomy", {}),
    ("photo of a castle on a hill at sunset, golden hour, dramatic sky BREAK detailed stonework, (moss:0.8)", {}),
    ("emoji 🙂 with (sparkles ✨:1.3)", {}),
    ("Café au lait, naïve art", {}),
    ("portrait,close-up,face,(freckles:1.15),bokeh", {}),
]

ERROR_CASES = ["(a:1.2.3)", "(a:.)", "(a:..5)"]


def tokenizer_spec(sd2: bool) -> TokenizerSpec:
    tokenizer = CLIPTokenizer.from_pretrained(str(VOCAB_DIR), pad_token="!" if sd2 else "<|endoftext|>")
    vocab = tokenizer.get_vocab()
    return TokenizerSpec(
        tokenize=lambda texts: tokenizer(texts, truncation=False, add_special_tokens=False)["input_ids"],
        bos=tokenizer.bos_token_id,
        eos=tokenizer.eos_token_id,
        pad=tokenizer.pad_token_id,
        comma=vocab[",</w>"],
    )


def main() -> None:
    specs = {False: tokenizer_spec(False), True: tokenizer_spec(True)}
    out_cases = []
    for prompt, options in CASES:
        sd2 = bool(options.get("sd2"))
        tok = specs[sd2]
        backtrack = options.get("backtrack", 20)
        embeddings = [Embedding(name, vectors) for name, vectors in options.get("embeddings", [])]
        lookup = EmbeddingLookup(tok, embeddings) if embeddings else None
        chunks, count = tokenize_line(prompt, tok, backtrack, lookup)
        out_cases.append(
            {
                "prompt": prompt,
                "padding": "sd2" if sd2 else "sd1",
                "commaBacktrack": backtrack,
                "embeddings": [{"name": e.name, "vectors": e.vectors} for e in embeddings],
                "parsed": parse_prompt_attention(prompt),
                "tokenCount": count,
                "chunks": [
                    {
                        "ids": padded_tokens(c, tok),
                        "multipliers": c.multipliers,
                        "fixes": [{"offset": o, "name": n} for o, n in c.fixes],
                    }
                    for c in chunks
                ],
            }
        )
    errors = []
    for prompt in ERROR_CASES:
        try:
            parse_prompt_attention(prompt)
        except ValueError as e:
            errors.append({"prompt": prompt, "error": str(e)})
            continue
        raise SystemExit(f"expected {prompt!r} to fail")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    # One case per line: readable diffs without a 77-line array per chunk.
    dump = lambda v: json.dumps(v, ensure_ascii=False, separators=(",", ":"))  # noqa: E731
    lines = ",\n  ".join(dump(c) for c in out_cases)
    text = '{"cases": [\n  ' + lines + '\n],\n"errors": ' + dump(errors) + "}\n"
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(out_cases)} cases, {len(errors)} error cases")


if __name__ == "__main__":
    main()
