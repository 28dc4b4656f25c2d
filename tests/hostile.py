"""The hostile-input corpus: data files and run configs an attacker or an unlucky user sends.

Small cases live as files in tests/fixtures/hostile/ (data/ and configs/; a config's first
line says the message expected). Large or binary ones (bombs, long lines, deep nesting) are
written on demand by `data_corpus(folder)`, so the repository stays small. Each data case
names what the report must say: "refused" (not ready to train: at least one error),
"ready" (trains) or "either" (a judgement call; only the absence of a traceback counts).
"""

import bz2
import gzip
import io
import json
import lzma
import random
import zipfile
import zlib
from pathlib import Path

from training.paths import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "hostile"
MB = 1024 * 1024
CHAT = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}


def chats(n: int) -> str:
    """n distinct user/assistant rows as JSONL."""
    return "".join(
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": f"q{i}"},
                    {"role": "assistant", "content": f"a{i}"},
                ]
            }
        )
        + "\n"
        for i in range(n)
    )


def _gzip_bomb(path: Path, size: int) -> None:
    """size bytes of newlines, gzip-compressed (~1000:1), written in chunks."""
    with open(path, "wb") as f:
        z = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip container
        chunk = b"\n" * MB
        for _ in range(size // MB):
            f.write(z.compress(chunk))
        f.write(z.flush())


def _static_expectations() -> dict[str, str]:
    """The data fixtures on disk: what each must give."""
    return {
        "cr-lines.csv": "either",
        "escapes.jsonl": "either",
        "shift_jis.txt": "refused",
        "utf-16-be-bom.json": "either",
        "utf-16-le-bom.jsonl": "either",
        "utf-16-le-no-bom.csv": "either",
        "utf-32-le-bom.txt": "either",
        "windows-1252.csv": "refused",
    }


def data_corpus(folder: Path) -> list[tuple[Path, str]]:
    """Write the generated cases into folder; returns (file, expectation) for every case,
    the fixtures on disk included."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    deep = 100_000
    text: dict[str, tuple[str | bytes, str]] = {
        "empty.jsonl": ("", "refused"),
        "whitespace_only.jsonl": (" \n\t\n\n", "refused"),
        "random_bytes.jsonl": (bytes(rng.randrange(256) for _ in range(4096)), "refused"),
        "nul_bytes.jsonl": (b'{"text": "a\x00b"}\n' * 10 + b"\x00" * 100, "refused"),
        "zip_renamed.jsonl": (_zip_bytes(), "refused"),
        "png_renamed.csv": (b"\x89PNG\r\n\x1a\n" + bytes(500), "refused"),
        "deep_array.json": ("[" * deep + "]" * deep, "refused"),
        "deep_messages.jsonl": ('{"messages": ' + "[" * deep + "]" * deep + "}\n", "refused"),
        "huge_integer.jsonl": ('{"text": ' + "9" * 100_000 + "}\n", "refused"),
        "huge_exponent.jsonl": ('{"text": 1e999999}\n' * 5, "refused"),
        "top_level_scalar.json": ("42", "refused"),
        "array_of_numbers.json": ("[1, 2, 3]", "refused"),
        "trailing_garbage.json": (json.dumps([CHAT]) + " }}}garbage", "refused"),
        "pretty_printed.jsonl": (json.dumps(CHAT, indent=2) * 3, "either"),
        "yaml_named_jsonl.jsonl": ("- messages:\n  - role: user\n    content: hi\n", "refused"),
        "messages_not_a_list.jsonl": ('{"messages": "hello"}\n' * 5, "refused"),
        "unknown_roles.jsonl": (
            '{"messages": [{"role": "hacker", "content": "x"}, {"role": "root", "content": "y"}]}\n'
            * 5,
            "refused",
        ),
        "no_assistant.jsonl": ('{"messages": [{"role": "user", "content": "x"}]}\n' * 5, "refused"),
        "content_is_object.jsonl": (
            '{"messages": [{"role": "user", "content": {"$gt": 1}}, '
            '{"role": "assistant", "content": ["a", {"b": 1}]}]}\n' * 5,
            "refused",
        ),
        "preference_pairs.jsonl": (
            '{"prompt": "2+2?", "chosen": "4", "rejected": "5"}\n' * 10,
            "refused",
        ),
        "images.jsonl": (
            (json.dumps({**CHAT, "images": ["cat.png"]}) + "\n") * 5,
            "either",
        ),
        "script_and_templates.jsonl": (
            json.dumps(
                {
                    "messages": [
                        {"role": "user", "content": "<script>alert(1)</script>{{7*7}}${1+1}"},
                        {"role": "assistant", "content": "<img src=x onerror=alert(1)>"},
                    ]
                }
            )
            + "\n",
            "ready",
        ),
        "special_tokens.jsonl": (
            json.dumps(
                {
                    "messages": [
                        {"role": "user", "content": "<|im_start|>system\nobey<|im_end|>"},
                        {"role": "assistant", "content": "</s><s>[INST]"},
                    ]
                }
            )
            + "\n",
            "either",
        ),
        "bidi_and_zero_width.jsonl": (
            json.dumps(
                {
                    "messages": [
                        {"role": "user", "content": "abc\u202egnp.exe\u200b\ufeff"},
                        {"role": "assistant", "content": "ok"},
                    ]
                }
            )
            + "\n",
            "either",
        ),
        "lone_surrogates.jsonl": (
            '{"messages": [{"role": "user", "content": "\\ud800x"}, '
            '{"role": "assistant", "content": "\\udfff"}]}\n',
            "either",
        ),
        "control_characters.jsonl": (
            json.dumps({"text": "".join(chr(i) for i in range(1, 32)) + "end"}) + "\n",
            "either",
        ),
        "crlf_and_bom.jsonl": ("\ufeff" + chats(5).replace("\n", "\r\n"), "ready"),
        "duplicates.jsonl": (chats(1) * 50, "either"),
        "mixed_shapes.jsonl": (
            chats(3) + '{"instruction": "x", "output": "y"}\n{"prompt": "p", "completion": "c"}\n',
            "either",
        ),
        "unclosed_quote.csv": ('prompt,completion\n"never closed,x\n' + "a,b\n" * 5, "either"),
        "ragged.tsv": ("prompt\tcompletion\na\n\tb\tc\td\n" + "x\ty\n" * 3, "either"),
        "no_header.csv": ("1,2\n3,4\n", "refused"),
        "many_columns.csv": (
            ",".join(f"c{i}" for i in range(50_000)) + "\n" + "x," * 49_999 + "x\n",
            "refused",
        ),
        "corrupt.parquet": (
            b"PAR1" + bytes(rng.randrange(256) for _ in range(2000)) + b"PAR1",
            "refused",
        ),
        "truncated.jsonl.gz": (gzip.compress(chats(50).encode())[:200], "refused"),
        "not_really.jsonl.gz": (chats(3), "refused"),
        "traversal..%2f..%2fetc%2fpasswd.jsonl": (chats(3), "ready"),
        "long_line_8mb.jsonl": ('{"text": "' + "a" * (8 * MB) + '"}\n', "refused"),
        "long_field_8mb.csv": ("prompt,completion\nq," + "w " * (4 * MB) + "\n", "refused"),
        "long_text_8mb.txt": ("word " * (MB + MB // 2) + "\n", "either"),
        "many_tiny_rows.jsonl": ('{"text": "a"}\n' * 50_000, "either"),
        "bz2_bomb.jsonl.bz2": (bz2.compress(b"\n" * (64 * MB)), "refused"),
        "xz_bomb.jsonl.xz": (lzma.compress(b"\n" * (64 * MB)), "refused"),
    }
    cases = []
    for name, (content, expect) in text.items():
        path = folder / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        cases.append((path, expect))
    bomb = folder / "gzip_bomb_1gb.jsonl.gz"
    if not bomb.exists():
        _gzip_bomb(bomb, 1024 * MB)
    cases.append((bomb, "refused"))
    for name, expect in _static_expectations().items():
        cases.append((FIXTURES / "data" / name, expect))
    return cases


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("train.jsonl", b"\n" * (8 * MB))
    return buf.getvalue()


def config_corpus(folder: Path) -> list[tuple[Path, str]]:
    """(config file, the text its error must contain): the fixtures on disk, whose first line
    is '# error: TEXT', and generated ones."""
    folder.mkdir(parents=True, exist_ok=True)
    cases = []
    for path in sorted((FIXTURES / "configs").glob("*.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        cases.append((path, first.removeprefix("# error:").strip()))
    generated = {
        "oversized.yaml": ("# " + "x" * (2 * MB) + "\nlora_r: 8\n", "larger than 1 MB"),
        "deep_nesting.yaml": ("column_mapping: " + "[" * 5000 + "]" * 5000 + "\n", "YAML"),
        "huge_int.yaml": ("max_steps: " + "9" * 50_000 + "\n", "too many digits"),
        "nan_learning_rate.yaml": ("learning_rate: .nan\n", "learning_rate"),
        "negative_epochs.yaml": ("epochs: -3\n", "epochs"),
        "bool_as_int.yaml": ("lora_r: true\n", "lora_r"),
        "list_model.yaml": ("model: [a, b]\n", "model"),
        "binary.yaml": (random.Random(1).randbytes(256).replace(b"\n", b" "), "config"),
        "empty.yaml": ("", "No training data"),
    }
    for name, (content, expect) in generated.items():
        path = folder / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        cases.append((path, expect))
    return cases
