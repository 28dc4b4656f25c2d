"""A Hub dataset's first preview rows against its full check: what reading the split's
first file only saves.

    .venv/bin/python bench/hub_preview.py                 # 8 files of 25,000 chats (~39 MB)
    .venv/bin/python bench/hub_preview.py --files 4 --rows 5000

The split is served by the tests' Hub stand-in (tests/hub_dataset.py) on 127.0.0.1, private
to one token, into a fresh Hugging Face cache per repeat. Preview: `open_split` +
`preview_file` (20 rows), what the Data tab shows first. Full check: `validate_file` on the
same split in another fresh cache (every file downloaded and read). Loopback downloads cost
almost nothing, so on a real network the bytes ratio (also printed) is the better guide.
Medians of --repeats; the ratio is printed last: `hub_preview_vs_check: <x>x`.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["HF_HUB_OFFLINE"] = "0"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"

TOKEN = "hf_benchToken0123456789"


def chats(start: int, n: int) -> bytes:
    rows = []
    for i in range(start, start + n):
        question = f"Question {i}: how do I reset the router in room {i % 97}?"
        answer = f"Answer {i}: hold the reset button for {i % 30 + 5} seconds, then wait."
        turns = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        rows.append(json.dumps({"messages": turns}) + "\n")
    return "".join(rows).encode()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--files", type=int, default=8)
    p.add_argument("--rows", type=int, default=25_000, help="rows per file")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    files = {
        f"data/train-{i:05d}-of-{args.files:05d}.jsonl": chats(i * args.rows, args.rows)
        for i in range(args.files)
    }
    total = sum(len(c) for c in files.values())
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TUNESMITH_HOME"] = str(Path(tmp) / "home")
        from huggingface_hub import constants

        from tests.hub_dataset import go_online, serving_hub
        from training.data import preview_file, validate_file
        from training.data.hub import as_ref, open_split

        class Patch:  # go_online's monkeypatch, for a script
            def setattr(self, obj, name, value):
                setattr(obj, name, value)

            def setenv(self, name, value):
                os.environ[name] = value

            def delenv(self, name, raising=True):
                os.environ.pop(name, None)

        sha = "5" * 40
        preview_s, check_s, preview_bytes = [], [], []
        with serving_hub({"bench/chats": (sha, files)}, TOKEN) as (endpoint, _, served):
            go_online(Patch(), endpoint)
            for r in range(args.repeats):
                for kind in ("preview", "check"):
                    constants.HF_HUB_CACHE = str(Path(tmp) / f"cache-{r}-{kind}")
                    served.clear()
                    start = time.perf_counter()
                    split = open_split(as_ref("hub:bench/chats"), TOKEN)
                    if kind == "preview":
                        rows = preview_file(split, 20).rows
                        assert len(rows) == 20
                        preview_s.append(time.perf_counter() - start)
                        preview_bytes.append(sum(len(files[n]) for n in served))
                    else:
                        report = validate_file(split)
                        assert report.rows == args.files * args.rows
                        check_s.append(time.perf_counter() - start)
    preview, check = statistics.median(preview_s), statistics.median(check_s)
    fetched = statistics.median(preview_bytes)
    print(f"split: {args.files} files, {args.files * args.rows:,} rows, {total / 2**20:.1f} MB")
    print(f"first preview rows: {preview:.2f} s, {fetched / 2**20:.1f} MB downloaded")
    print(f"full check: {check:.2f} s, {total / 2**20:.1f} MB downloaded")
    print(f"bytes ratio (check / preview): {total / fetched:.1f}x")
    print(f"hub_preview_vs_check: {check / preview:.1f}x")


if __name__ == "__main__":
    main()
