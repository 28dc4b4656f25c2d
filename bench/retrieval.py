"""Retrieval baseline cost: building the BM25 index over a run's training rows, and looking up
the k most similar rows for one question, against one plain base-model reply.

    .venv/bin/python bench/retrieval.py                  # bundled SmolLM2-135M if converted
    .venv/bin/python bench/retrieval.py --tiny           # the ~0.2 M test model (pipeline check)

Data: --rows generated chats (10,000 by default), one user question of 4-40 words and an
answer of 5-80 words each (log-uniform: most short, a few long), from a 200-word vocabulary
so that words repeat across rows as in real data. Build: `Retriever(train)` as the Playground
and the evaluation make it (training/chat/columns.py), median of 3. Lookup: `turns(question,
k)`, the k nearest rows as prior turns, for questions that are training questions with
words dropped and shuffled (paraphrase-like), so every lookup has matches to rank.
Reply: greedy, min_new_tokens = max_new_tokens = --tokens (48), the base model alone, one
row: what one Playground base column costs. Lookups and replies alternate, --repeats times,
so load from other processes hits both alike; medians are reported.
The ratio is printed last: `retrieval_lookup_vs_reply: <x>x`, one lookup over one reply
(the target is at most 0.05x: retrieval must not slow a request down noticeably).
"""

import argparse
import math
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def words(rng: random.Random, vocabulary: list[str], low: int, high: int) -> str:
    n = int(math.exp(rng.uniform(math.log(low), math.log(high))))
    return " ".join(rng.choices(vocabulary, k=n))


def training_rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    vocabulary = [f"w{rng.randrange(10**6):06d}" for _ in range(200)]
    return [
        {
            "messages": [
                {"role": "user", "content": words(rng, vocabulary, 4, 40) + "?"},
                {"role": "assistant", "content": words(rng, vocabulary, 5, 80) + "."},
            ]
        }
        for _ in range(n)
    ]


def paraphrase(rng: random.Random, question: str) -> list[dict]:
    kept = [w for w in question.rstrip("?").split() if rng.random() < 0.7] or ["w"]
    rng.shuffle(kept)
    return [{"role": "user", "content": " ".join(kept) + "?"}]


def pick_model(tiny: bool, tmp: Path) -> tuple[Path, str]:
    from training.models.bundled import bundled_dir

    if not tiny and (bundled_dir() / "config.json").is_file():
        return bundled_dir(), "bundled SmolLM2-135M-Instruct"
    from tests.assets import build_tiny_model

    note = "tiny test model" + ("" if tiny else " (bundled SmolLM2 not converted)")
    return build_tiny_model(tmp / "tiny"), note


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--tiny", action="store_true", help="use the tiny test model")
    p.add_argument("--rows", type=int, default=10_000, help="training rows to index")
    p.add_argument("-k", type=int, default=4, help="rows retrieved per question")
    p.add_argument("--tokens", type=int, default=48, help="new tokens per reply")
    p.add_argument("--queries", type=int, default=100, help="lookups per repeat")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()

    from training.chat.columns import Retriever
    from training.chat.engine import ChatEngine, Row, Settings

    train = training_rows(args.rows)
    builds = []
    for _ in range(3):
        start = time.perf_counter()
        retriever = Retriever(train)
        builds.append(time.perf_counter() - start)
    rng = random.Random(1)
    questions = [
        paraphrase(rng, rng.choice(train)["messages"][0]["content"]) for _ in range(args.queries)
    ]

    model_dir, note = pick_model(args.tiny, Path(tempfile.mkdtemp(prefix="bench-retrieval-")))
    engine = ChatEngine()
    ask = [{"role": "user", "content": "Write a short story about a fox who learns to read."}]
    settings = Settings(temperature=0, max_new_tokens=args.tokens, min_new_tokens=args.tokens)

    def reply() -> float:
        start = time.perf_counter()
        (got,) = engine.generate(str(model_dir), [Row(ask)], settings)
        elapsed = time.perf_counter() - start
        assert got.stats.generated_tokens == args.tokens, got.stats
        return elapsed

    reply()  # load and warm up
    retriever.turns(questions[0], args.k)
    lookups, replies, shots = [], [], 0
    for _ in range(args.repeats):  # alternating, so a busy machine slows both alike
        for q in questions:
            start = time.perf_counter()
            turns = retriever.turns(q, args.k)
            lookups.append(time.perf_counter() - start)
            shots += len(turns) // 2
        replies.append(reply())
    assert shots == args.k * len(lookups), "every lookup returns k rows"
    build, lookup, answer = (statistics.median(v) for v in (builds, lookups, replies))

    print(f"model: {note} ({model_dir})")
    print(f"training rows indexed: {args.rows:,}; k = {args.k}; lookups: {len(lookups):,}")
    print(f"index build (BM25, median of {len(builds)}): {build:.3f} s")
    print(f"lookup per request (median): {lookup * 1000:.2f} ms")
    print(f"plain {args.tokens}-token base reply (median of {len(replies)}): {answer:.2f} s")
    print(f"retrieval_lookup_vs_reply: {lookup / answer:.4f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
