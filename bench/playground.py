"""Playground cost: memory of base + adapter vs base alone, and one side-by-side base+tuned
reply vs a single reply of the same length.

    .venv/bin/python bench/playground.py                 # bundled SmolLM2-135M if converted
    .venv/bin/python bench/playground.py --tiny          # the ~0.2 M test model (pipeline check)

The adapter is LoRA r16 / alpha 32 on all linear layers (the run defaults) with random B
weights, so it really changes outputs. Memory: process RSS after loading the base and
replying once, then after attaching the adapter and replying side by side; also the same
as growth over the runtime baseline (RSS after importing torch/transformers), the figure
where a second copy of the model would show as ~2x. Latency: greedy, min_new_tokens =
max_new_tokens so every reply has exactly N tokens; single = the base model alone, side by
side = base and tuned rows in one mixed batch (PEFT adapter_names), median of `--repeats`,
interleaved. Also shown: a single tuned reply (the LoRA layers cost extra while unmerged),
sequential base-then-tuned replies (what two separate generations would cost), and a
batch of two base rows without any adapter. On CPU every figure is measured three times in
the same run: on stock F.linear, on W·xᵀ products everywhere (training/chat/cpu_decode.py),
and on the engine's own choice per batch size, made when it loaded the model (printed).
The ratio is printed last: `playground_latency: <x>x`, the engine's side-by-side reply over
the fastest single reply of any path, so a slower single reply can never flatter it.

    .venv/bin/python bench/playground.py --tokens 16 --repeats 2   # quick look (~2 min)
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def rss_mb() -> float:
    """Resident set after returning the allocator's free lists to the OS (glibc keeps freed
    activations mapped, which would make the figure depend on what ran last)."""
    import contextlib
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError):  # not glibc: measure as is
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def make_adapter(model_dir: Path, out: Path) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    peft_model = get_peft_model(
        model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
    )
    gen = torch.Generator().manual_seed(0)
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:
            p.data = torch.randn(p.shape, generator=gen) * 0.01
    peft_model.save_pretrained(out)
    del model, peft_model
    return out


def pick_model(tiny: bool, tmp: Path) -> tuple[Path, str]:
    from training.models.bundled import bundled_dir

    if not tiny and (bundled_dir() / "config.json").is_file():
        return bundled_dir(), "bundled SmolLM2-135M-Instruct"
    from tests.assets import build_tiny_model

    note = "tiny test model" + (
        ""
        if tiny
        else " (bundled SmolLM2 not converted: run `python -m training models --prepare`)"
    )
    return build_tiny_model(tmp / "tiny"), note


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--tiny", action="store_true", help="use the tiny test model")
    p.add_argument("--tokens", type=int, default=48, help="new tokens per reply")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = p.parse_args()

    import torch  # the runtime baseline includes torch and transformers
    import transformers  # noqa: F401

    if args.threads:
        # On a CPU shared with other processes, OpenMP workers spin-wait for each other and a
        # batch of 2 can cost 10x a batch of 1; one thread per process measures the model.
        torch.set_num_threads(args.threads)

    from training.chat import cpu_decode
    from training.chat.engine import ChatEngine, Row, Settings

    tmp = Path(tempfile.mkdtemp(prefix="bench-playground-"))
    model_dir, note = pick_model(args.tiny, tmp)
    adapter = make_adapter(model_dir, tmp / "adapter")
    runtime = rss_mb()
    engine = ChatEngine()
    msgs = [
        {
            "role": "user",
            "content": "Write a short story about a fox who learns to fine-tune models.",
        }
    ]
    settings = Settings(temperature=0, max_new_tokens=args.tokens, min_new_tokens=args.tokens)
    name = str(model_dir)

    def timed(rows) -> float:
        start = time.perf_counter()
        replies = engine.generate(name, rows, settings)
        elapsed = time.perf_counter() - start
        assert all(r.stats.generated_tokens == args.tokens for r in replies), [
            r.stats for r in replies
        ]
        return elapsed

    timed([Row(msgs)])  # load + warm up
    base_rss = rss_mb()
    timed([Row(msgs), Row(msgs, adapter)])  # attach the adapter, warm the mixed path
    both_rss = rss_mb()

    with engine.lock:
        model, _ = engine.model(name, [adapter])
    on_cpu = next(model.parameters()).device.type == "cpu"
    paths = ("stock", "decode", "engine") if on_cpu else ("engine",)
    choice = next(iter(engine.cpu_choices.values()), None)
    rows_of = {"stock": (), "decode": cpu_decode.ALL_ROWS, "engine": choice and choice.rows}
    times = {(p, k): [] for p in paths for k in ("single", "side", "tuned", "pair")}
    for _ in range(args.repeats):  # interleaved, so load from other processes hits all alike
        for path in paths:
            if on_cpu:
                cpu_decode.enable(model, rows_of[path])
            times[path, "single"].append(timed([Row(msgs)]))
            times[path, "side"].append(timed([Row(msgs), Row(msgs, adapter)]))
            times[path, "tuned"].append(timed([Row(msgs, adapter)]))
            times[path, "pair"].append(timed([Row(msgs), Row(msgs)]))
    if on_cpu:
        cpu_decode.enable(model, rows_of["engine"])
    t = {key: statistics.median(v) for key, v in times.items()}

    print(f"model: {note} ({model_dir})")
    print(
        f"threads: {torch.get_num_threads()}, new tokens per reply: {args.tokens}, repeats: {args.repeats}"
    )
    print(f"rss runtime (torch + transformers): {runtime:.0f} MB")
    print(f"rss base alone: {base_rss:.0f} MB; base + adapter: {both_rss:.0f} MB")
    print(f"playground_memory (process rss): {both_rss / base_rss:.3f}x")
    print(
        f"playground_memory (model growth over runtime): {(both_rss - runtime) / (base_rss - runtime):.3f}x"
    )
    labels = {
        "stock": "stock F.linear",
        "decode": "W·xᵀ for every batch size",
        "engine": "engine (its choice per batch size)" if on_cpu else "engine",
    }
    for path in paths:
        single_s, side_s, tuned_s, pair_s = (
            t[path, k] for k in ("single", "side", "tuned", "pair")
        )
        print(f"--- {labels[path]}")
        print(f"single reply, base: {single_s:.2f} s; tuned (unmerged LoRA): {tuned_s:.2f} s")
        print(
            f"side by side, one mixed batch: {side_s:.2f} s; "
            f"sequential base then tuned: {single_s + tuned_s:.2f} s"
        )
        print(f"batch of two base rows, no adapter: {pair_s / single_s:.2f}x a single reply")
        print(f"side by side / single reply: {side_s / single_s:.2f}x")
    if on_cpu:
        print(f"engine's choice at load: {choice.summary() or 'stock (no large layer)'}")
        print(
            "engine vs stock F.linear: single reply "
            f"{t['stock', 'single'] / t['engine', 'single']:.2f}x as fast, side by side "
            f"{t['stock', 'side'] / t['engine', 'side']:.2f}x as fast"
        )
    fastest = min(paths, key=lambda path: t[path, "single"])
    print(f"fastest single reply: {t[fastest, 'single']:.2f} s ({fastest})")
    print(f"playground_latency: {t['engine', 'side'] / t[fastest, 'single']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
