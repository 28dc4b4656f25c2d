"""Data-parallel scaling: trained tokens/s with two worker processes against one.

    .venv/bin/python bench/scaling.py                                         # tiny model, ~2 min
    .venv/bin/python bench/scaling.py --model bundled/SmolLM2-135M-Instruct --steps 8

The arms run the real worker (`python -m training train`), as the job runner starts it, on
this machine's CPU cores, one core per process:
  one      1 process, 1 thread, batch 4 x accumulation 2
  two      2 processes under configs/accelerate/ddp.yaml (gloo), 1 thread each, batch 4 x 1
  threads  1 process, 2 threads, batch 4 x 2: what the two cores give without DDP (context)
Every arm trains the same rows in the same optimizer steps (8 sequences a step; accelerate
gives each rank every other batch of the same sampler), so only how the work is spread
differs. Trained tokens/s is the worker's own figure (non-padding tokens of all ranks over
the time in trainer.train). The arms alternate and each keeps its fastest run, so other load
on a shared machine penalises none systematically.

Scaling efficiency = tokens/s(two) / (2 x tokens/s(one)): 1.0 would be perfect; below it is
the gradient all-reduce after every step, the ranks waiting for each other, and the cores'
shared memory bandwidth. Printed last: `scaling efficiency: <x>`.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "fine",
    "tuning",
    "adapts",
    "models",
]


def write_chats(path: Path, n: int, seed: int) -> Path:
    """Chats of similar length (40-60 words a reply): the ranks get equal work."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(n):
            question = " ".join(rng.choices(WORDS, k=8))
            answer = " ".join(rng.choices(WORDS, k=rng.randint(40, 60)))
            chat = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
            f.write(json.dumps({"messages": chat}) + "\n")
    return path


def run_arm(arm: str, args, data: Path, work: Path) -> dict:
    from training.config import RunConfig
    from training.jobs.launch import WORKER_CMD, Launch, command

    processes, threads = {"one": (1, 1), "two": (2, 1), "threads": (1, 2)}[arm]
    folder = Path(tempfile.mkdtemp(prefix=f"{arm}-", dir=work))
    cfg = RunConfig(
        model=args.model,
        data=str(data),
        max_steps=args.steps,
        batch_size=4,
        grad_accum=2 // processes,
        max_length=args.max_length,
        lora_dropout=0.0,
        validation_split=0.0,
        eval_steps=0,
        save_steps=0,
        logging_steps=1,
        seed=args.seed,
    )
    cfg.to_yaml(folder / "config.yaml")
    how = Launch("ddp" if processes > 1 else "none", processes, arm)
    argv = command(how, WORKER_CMD, [str(folder / "config.yaml"), "--run-dir", str(folder)])
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT))
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{arm} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    metrics = json.loads((folder / "metrics.json").read_text())
    losses = [
        json.loads(line)["loss"]
        for line in (folder / "progress.jsonl").read_text().splitlines()
        if '"loss"' in line
    ]
    return {
        "arm": arm,
        "tokens_per_second": metrics["tokens_per_second"],
        "seconds": metrics["train_runtime_s"],
        "steps": metrics["steps"],
        "final_loss": losses[-1],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", help="model folder or catalogue key (default: a tiny test model)")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=2, help="runs per arm; the fastest counts")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-scaling-"))
    if not args.model:
        from tests.assets import build_tiny_model

        args.model = str(build_tiny_model(work / "tiny"))
    data = write_chats(work / "chats.jsonl", 8 * args.steps, args.seed)
    results = {"one": [], "two": [], "threads": []}
    for _ in range(args.repeats):
        for arm in results:
            results[arm].append(run_arm(arm, args, data, work))
    best = {arm: max(runs, key=lambda r: r["tokens_per_second"]) for arm, runs in results.items()}
    print(
        f"model {args.model}; {args.steps} optimizer steps of 8 chats (max_length "
        f"{args.max_length}); {os.cpu_count()} CPU cores; fastest of {args.repeats} runs per arm"
    )
    print(f"{'':34}{'tokens/s':>10}{'train s':>10}{'last loss':>11}")
    labels = {
        "one": "1 process x 1 thread",
        "two": "2 processes x 1 thread (DDP)",
        "threads": "1 process x 2 threads",
    }
    for arm, r in best.items():
        print(
            f"{labels[arm]:<34}{r['tokens_per_second']:>10.0f}{r['seconds']:>10.1f}"
            f"{r['final_loss']:>11.4f}"
        )
    speedup = best["two"]["tokens_per_second"] / best["one"]["tokens_per_second"]
    print(f"speed-up of two processes over one: {speedup:.2f}x")
    print(f"scaling efficiency: {speedup / 2:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
