"""Rows per second of the data validator vs a naive baseline, and its memory as files grow.

    .venv/bin/python bench/validate.py                      # tiny test tokenizer, ~5 min on 2 CPUs
    .venv/bin/python bench/validate.py --model bundled/SmolLM2-135M-Instruct --skip-memory
    .venv/bin/python bench/validate.py --rows 20000 --skip-memory   # quick look

Data: a generated chat JSONL (`messages`), varied lengths: 0-1 system message, 1-3
user/assistant turns, user turns of 3-80 words and replies of 5-300 words (log-uniform), so
most rows are short and a few are long, as in real data. Every row is different.

Speed, same file, same tokenizer, each arm in a fresh process, the arms interleaved and
the best of --repeat runs kept (the machine may be shared; CPU seconds are printed too):
- ours: `validate_file(path, tokenizer=tok)`: every check, duplicate detection, statistics,
  exact token counts including the trained (assistant) tokens;
- naive: `pandas.read_json(lines=True)`, then one `apply_chat_template(tokenize=True)` call
  per row: total tokens only, no checks at all.
Memory: peak RSS of `validate_file` on N rows and on 10 N rows, each in a fresh process;
streaming means the ratio stays near 1.
Long lines: peak RSS of `validate_file` with the tokenizer (what `python -m training
validate FILE --model ...` does) on a file that is one line of words, 50 MB against 0.9 MB
(under the 1 MB record limit, so that one is read and tokenized), as TXT and as JSONL, each
in a fresh process. Bounded reading keeps the ratio near 1 (whole lines used to be
tokenized: 8.9 GB for 50 MB of words).
Peak RSS is the child's own high-water mark (VmHWM; ru_maxrss where there is no /proc),
since a child's ru_maxrss also counts the parent's memory at the fork.
The long-line memory ratio is printed last as `validate_long_line_memory_ratio: <ratio>x`.
"""

import argparse
import json
import math
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from training.hardware import own_peak_rss_mb  # noqa: E402

VOCABULARY = (
    "the of and to a in is it you that he was for on are with as I his they be at one have "
    "this from or had by hot word but what some we can out other were all there when up use "
    "your how said an each she which do their time if will way about many then them write "
    "would like so these her long make thing see him two has look more day could go come did "
    "number sound no most people my over know water than call first who may down side been "
    "now find model data training language learning answer question example result value "
    "because however therefore France Paris capital quick brown fox lazy dog 2024 42 3.14 "
    "fine-tuning, tokens; (for example) \"quoted\" don't it's can't well-known e.g."
)
WORDS = VOCABULARY.split()
SYSTEMS = [
    "You are a helpful assistant.",
    "You are a concise assistant. Answer in one paragraph.",
    "You are a friendly tutor who explains step by step.",
    "You answer questions about geography.",
    "You are a support agent for a software company.",
]


def _words(rng: random.Random, low: int, high: int) -> str:
    n = int(math.exp(rng.uniform(math.log(low), math.log(high))))
    return " ".join(rng.choices(WORDS, k=n))


def generate(path: Path, rows: int, seed: int = 0) -> None:
    """A chat JSONL with varied lengths; rows are unique (each starts with its number)."""
    rng = random.Random(seed)
    bodies = []
    for _ in range(min(rows, 20000)):  # distinct bodies, reused with a unique id per row
        messages = (
            [{"role": "system", "content": rng.choice(SYSTEMS)}] if rng.random() < 0.7 else []
        )
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
            messages.append({"role": "user", "content": "__ID__ " + _words(rng, 3, 80)})
            messages.append({"role": "assistant", "content": _words(rng, 5, 300)})
        bodies.append(json.dumps({"messages": messages}))
    with open(path, "w") as f:
        for i in range(rows):
            f.write(bodies[i % len(bodies)].replace("__ID__", f"#{i}") + "\n")


def arm(kind: str, path: str, tokenizer_dir: str) -> dict:
    """One measured run, in this (fresh) process."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    start, cpu = time.perf_counter(), _cpu()
    if kind == "naive":
        import pandas as pd

        df = pd.read_json(path, lines=True)
        tokens = [
            len(tok.apply_chat_template(m, tokenize=True, return_dict=False))
            for m in df["messages"]
        ]
        rows, total = len(df), sum(tokens)
    elif kind == "line":  # whatever the verdict (the 50 MB line is refused): memory only
        from training.data import validate_file

        rows, total = validate_file(path, tokenizer=tok).rows, 0
    else:
        from training.data import validate_file

        report = validate_file(path, tokenizer=tok)
        assert not report.errors, report.errors[:3]
        rows = report.stats["examples"]
        total = int(report.stats["tokens_per_example"]["mean"] * rows)
    seconds, cpu = time.perf_counter() - start, _cpu() - cpu
    return {
        "rows": rows,
        "seconds": seconds,
        "cpu": cpu,
        "tokens": total,
        "maxrss_mb": own_peak_rss_mb(),
    }


def one_line(path: Path, megabytes: float, jsonl: bool) -> None:
    """A file that is a single line of words (JSONL: one {"text": ...} object)."""
    rng, size = random.Random(0), int(megabytes * 1e6)
    words = " ".join(rng.choices(WORDS, k=size // 4 + 1))[: size - 20 * jsonl]
    path.write_text(json.dumps({"text": words}) if jsonl else words)


def long_lines(work: Path, tok_dir: Path) -> float:
    """Peak RSS on a 50 MB line over a 0.9 MB line, TXT and JSONL; the larger ratio."""
    ratios = []
    for suffix in (".txt", ".jsonl"):
        peaks = []
        for megabytes in (0.9, 50):
            path = work / f"line-{megabytes}{suffix}"
            one_line(path, megabytes, suffix == ".jsonl")
            peaks.append(run_arm("line", path, tok_dir)["maxrss_mb"])
            path.unlink()
        ratios.append(peaks[1] / peaks[0])
        print(
            f"one-line {suffix[1:]}: 0.9 MB line {peaks[0]:.0f} MB peak, "
            f"50 MB line {peaks[1]:.0f} MB peak ({ratios[-1]:.2f}x)"
        )
    return max(ratios)


def _cpu() -> float:
    """CPU seconds of this process, all threads (the tokenizer's Rust threads included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_arm(kind: str, path: Path, tokenizer_dir: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--arm", kind, str(path), str(tokenizer_dir)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def tokenizer_dir(model: str | None, work: Path) -> tuple[Path, str]:
    if model:
        from training.models.catalogue import load_tokenizer

        tok = load_tokenizer(model)
        name = f"{model} tokenizer"
    else:
        from tests.assets import build_tokenizer

        tok = build_tokenizer(work / "tok-build")
        name = "tiny test tokenizer (tests/assets.build_tokenizer, ChatML, vocab 2048) for speed"
    tok.save_pretrained(work / "tok")
    return work / "tok", name


def main() -> None:
    if sys.argv[1:2] == ["--arm"]:
        print(json.dumps(arm(*sys.argv[2:5])))
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--model", help="use this model's tokenizer (default: the tiny test one)")
    p.add_argument("--skip-memory", action="store_true", help="only the speed comparison")
    p.add_argument("--repeat", type=int, default=2, help="timed runs per arm (best is kept)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="tunesmith-bench-") as tmp:
        work = Path(tmp)
        tok_dir, tok_name = tokenizer_dir(args.model, work)
        small = work / "small.jsonl"
        generate(small, args.rows)
        mb = small.stat().st_size / 1e6
        print(f"tokenizer: {tok_name}")
        print(f"data: {args.rows:,} chat rows, {mb:.0f} MB JSONL (varied lengths)")
        runs = {"ours": [], "naive": []}
        for _ in range(args.repeat):  # interleaved, best of N: other processes share the CPUs
            for kind in runs:
                runs[kind].append(run_arm(kind, small, tok_dir))
        ours, naive = (min(runs[k], key=lambda r: r["seconds"]) for k in ("ours", "naive"))
        print(f"best of {args.repeat} interleaved runs per arm, each in a fresh process")
        for name, r in (("validate_file", ours), ("naive pandas + per-row template", naive)):
            print(
                f"{name:<32} {r['rows'] / r['seconds']:>9,.0f} rows/s  ({r['seconds']:.1f} s wall, "
                f"{r['cpu']:.1f} s CPU, {r['tokens'] / r['rows']:.1f} tokens/row, "
                f"peak RSS {r['maxrss_mb']:.0f} MB)"
            )
        print(f"validate_cpu_ratio: {naive['cpu'] / ours['cpu']:.1f}x (CPU seconds, naive / ours)")
        if not args.skip_memory:
            big = work / "big.jsonl"
            generate(big, args.rows * 10)
            large = run_arm("ours", big, tok_dir)
            print(
                f"memory: {args.rows:,} rows {ours['maxrss_mb']:.0f} MB, "
                f"{args.rows * 10:,} rows {large['maxrss_mb']:.0f} MB "
                f"({big.stat().st_size / 1e6:.0f} MB file, {large['seconds']:.0f} s)"
            )
            print(f"validate_memory_ratio: {large['maxrss_mb'] / ours['maxrss_mb']:.2f}x")
        speedup = (ours["rows"] / ours["seconds"]) / (naive["rows"] / naive["seconds"])
        print(f"validate_speedup: {speedup:.1f}x")
        ratio = long_lines(work, tok_dir)
        print(f"validate_long_line_memory_ratio: {ratio:.2f}x")


if __name__ == "__main__":
    main()
