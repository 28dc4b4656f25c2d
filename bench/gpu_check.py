"""GPU check for a short loan of a GPU machine (8 minutes at most): LoRA and QLoRA training
speed, peak memory and MFU on a 0.5B model, and the playground's side-by-side reply.

    bash bench/gpu_check.sh                          # on the GPU machine; done within 450 s
    .venv/bin/python bench/gpu_check.py --cpu-smoke  # the same code paths, tiny model, on CPU

Needs the environment of scripts/setup.sh (.venv) or `pip install -r requirements.txt`
(torch with CUDA, transformers, peft, trl, datasets; bitsandbytes for QLoRA).

Model: Qwen/Qwen2.5-0.5B-Instruct from the local Hugging Face cache (HF_HUB_OFFLINE=1:
nothing is downloaded), else random weights of its shape (QWEN25_05B, below) with the test
tokenizer of tests/assets.py: speed and memory do not depend on the weights, and the model
keeps its full 151,936-row vocabulary, since the LM head is a quarter of the compute.
`--model` takes any folder or cached Hub id. Without CUDA (or with --cpu-smoke) a tiny model
of the same family runs the same parts for a few steps on CPU.

Training (parts lora, qlora): our path (training/backends/lora.py: load_model, build_trainer),
`warmup_steps` untimed optimizer steps, then `steps` timed ones, on synthetic chats cut to
exactly `seq_len` tokens (no padding). Trained tokens/s = tokens run through the model in the
timed steps / their wall time, CUDA synchronised. Peak memory = torch.cuda.max_memory_allocated
of the part's own process. MFU = tokens/s x 4N / peak FLOPs (PEAK_TFLOPS, dense tensor cores):
LoRA leaves the N base weights frozen, so a token costs a forward (2N) and the backward's
activation gradients (2N), and no weight gradients (another 2N in full fine-tuning). Not
counted: attention scores (their share is printed), the adapters (<1 %), and the forward that
activation checkpointing recomputes (the hardware does ~6N; MFU counts the model's 4N).

Playground (part playground): training/chat/engine.ChatEngine with a LoRA adapter attached
(bench/playground.make_adapter); one base reply alone vs base + tuned side by side in one
mixed batch, `reply_tokens` each (greedy, min = max), median of `repeats` interleaved runs.

Each part runs in a child process limited to what is left of `budget_s`, so a hang or a crash
costs one part and the summary table is still printed, last.

Its length: one self-contained script for a short GPU loan (model build, LoRA, QLoRA,
playground, a time guard per part, the summary table).
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

CACHED_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
QWEN25_05B = {  # the architecture part of Qwen2.5-0.5B's config.json: 494 M parameters
    "model_type": "qwen2",
    "vocab_size": 151936,
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "hidden_act": "silu",
    "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0,
    "tie_word_embeddings": True,
}
# CPU-sized; the vocabulary stays wider than the 2,048-token test tokenizer, as above.
TINY = QWEN25_05B | {
    "vocab_size": 4096,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
}
# Dense tensor-core peak, TFLOPS, bf16 (fp16 on the T4, which has no bf16), from the vendors'
# datasheets (their headline figures assume 2:4 sparsity: twice these). The first entry found
# in the lower-cased device name wins, so the more specific names come first.
PEAK_TFLOPS = [
    ("h100 pcie", 756),
    ("h100 nvl", 835),
    ("h200 nvl", 835),
    ("h200", 989),  # SXM: the H100 SXM's compute (both datasheets: 1,979 sparse)
    ("h100", 989),
    ("a100", 312),
    ("l40s", 362),
    ("l40", 181),
    ("a10g", 70),  # AWS's A10G datasheet: 70 (140 sparse), not the A10's 125
    ("a10", 125),
    ("l4", 121),
    ("t4", 65),  # fp16
]
PARTS = ("model", "lora", "qlora", "playground")


@dataclass
class Plan:
    warmup_steps: int = 5  # untimed: kernel selection, allocator growth
    steps: int = 30  # timed: 30 steps x 8 chats x 512 tokens = 122,880 trained tokens
    batch_size: int = 8  # chats per optimizer step; 8 x 512 x 151,936 logits fit a 16 GB T4
    seq_len: int = 512  # tokens per chat, all the same
    reply_tokens: int = 128  # playground: new tokens per reply
    repeats: int = 3  # playground: timings of each kind, the median counts
    budget_s: float = 450.0  # the whole check, well inside an 8-minute loan

    def __post_init__(self):
        if self.warmup_steps < 1 or self.steps < 1:
            raise ValueError("warmup_steps and steps must be at least 1 (the clock starts after)")


CPU_SMOKE = Plan(warmup_steps=1, steps=2, batch_size=2, seq_len=64, reply_tokens=8, repeats=1)


def peak_tflops(gpu_name: str) -> tuple[int, str] | None:
    """(dense TFLOPS, matched name) for a CUDA device name, or None when not in the table."""
    name = gpu_name.lower()
    return next(((tf, key) for key, tf in PEAK_TFLOPS if key in name), None)


def fixed_length_chats(n: int, seq_len: int) -> list[dict]:
    """Chats whose reply alone has seq_len words (>= seq_len tokens): all cut to seq_len."""
    from bench.train_throughput import WORDS

    rng = random.Random(0)
    return [
        {
            "messages": [
                {"role": "user", "content": " ".join(rng.choices(WORDS, k=12))},
                {"role": "assistant", "content": " ".join(rng.choices(WORDS, k=seq_len))},
            ]
        }
        for _ in range(n)
    ]


def peak_gb(hw) -> float | None:
    """Peak memory PyTorch allocated in this process since the last reset; None on CPU."""
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if hw.cuda else None


def pick_model(args, smoke: bool, hw) -> tuple[str, str]:
    """A local model folder, else random weights of the plan's shape saved to the work dir."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from tests.assets import build_tokenizer
    from training.hardware import torch_dtype
    from training.models.catalogue import resolve_model

    why = "--cpu-smoke: tiny model"
    if args.model or not smoke:
        try:
            name = args.model or CACHED_MODEL
            return str(resolve_model(name)), f"{name} (local files)"
        except ValueError as e:
            if args.model:
                raise
            why = f"no local copy of {CACHED_MODEL} ({e})"
    folder = Path(args.work) / "random-model"
    tok = build_tokenizer(folder)
    shape = TINY if smoke else QWEN25_05B
    config = AutoConfig.for_model(
        **shape, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None
    )
    torch.manual_seed(0)
    with torch.device(hw.device):  # initialising 494 M weights on the GPU takes a moment
        model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype(hw.precision))
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(folder)
    label = "tiny Qwen2" if smoke else "Qwen2.5-0.5B-shaped"
    return str(folder), f"random weights, {label} config, test tokenizer; {why}"


def part_model(args, plan: Plan, smoke: bool) -> dict:
    """The device, the model folder every other part uses, N, and whether QLoRA can run."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from training.backends.lora import check_supported
    from training.config import RunConfig
    from training.hardware import detect

    hw = detect()
    if not smoke and not hw.cuda:
        raise RuntimeError("torch sees no CUDA GPU (a CPU build?); --cpu-smoke checks on CPU")
    folder, source = pick_model(args, smoke, hw)
    config = AutoConfig.from_pretrained(folder)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    params = sum(p.numel() for p in model.parameters())  # a tied LM head counts once
    if model.get_input_embeddings().weight is not model.get_output_embeddings().weight:
        params -= model.get_input_embeddings().weight.numel()  # a lookup: no FLOPs
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    try:
        check_supported(RunConfig(data="gpu_check", method="qlora"), hw)
        import bitsandbytes  # noqa: F401

        qlora_refused = None
    except Exception as e:  # Refused, or a bitsandbytes that does not load
        qlora_refused = f"{type(e).__name__}: {e}"
    return {
        "status": "ok",
        "model_dir": folder,
        "source": source,
        "params": params,
        "attention_width": config.num_hidden_layers * heads * head_dim,  # layers x heads x dim
        "device": hw.describe(),
        "gpu": hw.name if hw.cuda else "",
        "precision": hw.precision,
        "activation_checkpointing": hw.activation_checkpointing,
        "torch": f"{torch.__version__}, CUDA {torch.version.cuda}",
        "qlora_refused": qlora_refused,
    }


def part_train(method: str, args, plan: Plan) -> dict:
    import torch
    from transformers import TrainerCallback

    from training.backends.lora import build_trainer, load_model
    from training.config import RunConfig
    from training.data.labels import encode_examples
    from training.hardware import detect
    from training.models.catalogue import chat_tokenizer

    hw = detect()
    total = plan.warmup_steps + plan.steps
    cfg = RunConfig(
        model=args.model_dir,
        data="gpu_check",
        method=method,
        batch_size=plan.batch_size,
        grad_accum=1,
        max_length=plan.seq_len,
        max_steps=total,
        eval_steps=0,
        save_steps=0,
        logging_steps=total,
    )
    tok = chat_tokenizer(cfg.model)
    chats = fixed_length_chats(plan.batch_size * total, plan.seq_len)
    rows, _ = encode_examples(tok, chats, plan.seq_len)
    if {len(r["input_ids"]) for r in rows} != {plan.seq_len}:
        raise RuntimeError(f"some chats came out shorter than {plan.seq_len} tokens")
    marks = []  # (time, tokens trained so far) after the warm-up and after the last step

    class Clock(TrainerCallback):
        def on_step_end(self, _args, state, control, **kwargs):
            if state.global_step in (plan.warmup_steps, total):
                if hw.cuda:
                    torch.cuda.synchronize()
                marks.append((time.perf_counter(), trainer.real))

    if hw.cuda:
        torch.cuda.reset_peak_memory_stats()
    model = load_model(cfg, hw)
    trainer = build_trainer(cfg, model, tok, rows, [], Path(args.work) / method, hw, [Clock()])
    output = trainer.train()
    (t0, n0), (t1, n1) = marks
    return {
        "status": "ok",
        "tokens_per_s": (n1 - n0) / (t1 - t0),
        "peak_gb": peak_gb(hw),
        "timed_tokens": n1 - n0,
        "seconds": t1 - t0,
        "loss": output.training_loss,
    }


def part_playground(args, plan: Plan) -> dict:
    import statistics

    import torch

    from bench.playground import make_adapter
    from training.chat.engine import ChatEngine, Row, Settings
    from training.hardware import detect

    hw = detect()
    adapter = make_adapter(Path(args.model_dir), Path(args.work) / "adapter")  # on CPU
    if hw.cuda:
        torch.cuda.reset_peak_memory_stats()
    engine = ChatEngine()
    n = plan.reply_tokens
    settings = Settings(temperature=0, max_new_tokens=n, min_new_tokens=n)
    msgs = [{"role": "user", "content": "Write a short story about a fox who fine-tunes models."}]
    single, side = [Row(msgs)], [Row(msgs), Row(msgs, adapter)]

    def timed(rows) -> float:
        start = time.perf_counter()
        replies = engine.generate(args.model_dir, rows, settings)
        seconds = time.perf_counter() - start
        if any(r.stats.generated_tokens != n for r in replies):
            raise RuntimeError(f"a reply was not {n} tokens long: {[r.stats for r in replies]}")
        return seconds

    timed(side)  # load the model, attach the adapter, warm both paths
    timed(single)
    times = {"single": [], "side": []}
    for _ in range(plan.repeats):  # interleaved: a passing slowdown hits both alike
        times["single"].append(timed(single))
        times["side"].append(timed(side))
    single_s, side_s = (statistics.median(times[k]) for k in ("single", "side"))
    return {
        "status": "ok",
        "single_tokens_per_s": n / single_s,
        "side_tokens_per_s": 2 * n / side_s,  # both rows' tokens
        "side_over_single": side_s / single_s,
        "peak_gb": peak_gb(hw),
    }


def run_part(args, plan: Plan, smoke: bool) -> dict:
    if args.part == "model":
        return part_model(args, plan, smoke)
    if args.part == "playground":
        return part_playground(args, plan)
    return part_train(args.part, args, plan)


def child(part: str, args, smoke: bool, deadline: float, extra=()) -> dict:
    """Run one part in its own process within the time left; its last line is JSON."""
    left = deadline - time.monotonic()
    if left < 15:
        return {
            "status": "failed",
            "reason": f"not started: {max(left, 0):.0f} s of the budget left",
        }
    print(f"[gpu_check] {part}: running, {left:.0f} s of the budget left", flush=True)
    cmd = [sys.executable, __file__, *sys.argv[1:], "--part", part, "--work", args.work, *extra]
    env = os.environ | ({"CUDA_VISIBLE_DEVICES": ""} if smoke else {})  # CPU even on a GPU box
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=left, env=env)
    except subprocess.TimeoutExpired as e:
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else e.stderr
        reason = f"stopped at the end of the budget ({left:.0f} s)"
        return {"status": "failed", "reason": reason, "log": (err or "")[-2500:]}
    lines = proc.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        result = {"status": "failed", "reason": f"exit code {proc.returncode}, no result"}
    if result.get("status") == "failed":
        result["log"] = proc.stderr[-2500:]  # the traceback
    return result


def explain_flops(info: dict, plan: Plan, override: float | None) -> float | None:
    """Print N, the FLOPs per token and the peak MFU divides by; return that peak in FLOP/s."""
    n = info["params"]
    attention = 12 * info["attention_width"] * plan.seq_len / (4 * n)
    print(
        f"FLOPs per trained token: 4N = 4 x {n / 1e6:.1f} M = {4 * n / 1e9:.3g} GFLOP "
        f"(attention scores, 12 x layers x width x seq_len, would add {attention:.1%})"
    )
    dtype = info["precision"]
    found = peak_tflops(info["gpu"]) if info["gpu"] else None
    if override:
        tflops, source = override, "given by --peak-tflops"
    elif found:
        tflops, key = found
        source = (
            f"the dense {dtype} tensor-core peak of {info['gpu']} on its datasheet "
            f"(no 2:4 sparsity; matched {key!r})"
        )
        if "mig" in info["gpu"].lower():
            source += ", of the whole GPU: a MIG slice has a share of it"
    else:
        print(f"MFU: no peak FLOPs for {info['gpu'] or 'a CPU'}; --peak-tflops gives one")
        return None
    print(
        f"MFU divides by {tflops:g} TFLOPS, {source}; training dtype {dtype} "
        f"(QLoRA: nf4 base weights, computing in {dtype})"
    )
    return tflops * 1e12


def summary_rows(part: str, r: dict, plan: Plan) -> list[tuple]:
    """(part, status, tokens/s, peak GB, MFU, note) rows of the summary table."""
    if r["status"] != "ok":
        return [(part, r["status"], None, None, None, r["reason"])]
    if part == "playground":
        single = f"{plan.reply_tokens} new tokens"
        side = f"{r['side_over_single']:.2f}x a single reply's time"
        return [
            ("playground single", "ok", r["single_tokens_per_s"], r["peak_gb"], None, single),
            ("playground base+tuned", "ok", r["side_tokens_per_s"], r["peak_gb"], None, side),
        ]
    note = f"{plan.steps} steps x {plan.batch_size} x {plan.seq_len} tokens, loss {r['loss']:.2f}"
    return [(part, "ok", r["tokens_per_s"], r["peak_gb"], r.get("mfu"), note)]


def fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def gb(value: float | None) -> str:
    return "n/a on CPU" if value is None else f"{value:.2f} GB"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cpu-smoke", action="store_true", help="tiny model on CPU (auto: no GPU)")
    p.add_argument("--model", help=f"folder or cached Hub id (default: {CACHED_MODEL} if cached)")
    p.add_argument("--peak-tflops", type=float, help="peak for MFU, instead of the table's")
    p.add_argument("--json", help="also write the results to this file")
    for f in fields(Plan):
        smoke_default = getattr(CPU_SMOKE, f.name)
        text = f"default {f.default}, with --cpu-smoke {smoke_default}"
        p.add_argument("--" + f.name.replace("_", "-"), type=f.type, help=text)
    for hidden in ("--part", "--work", "--model-dir"):  # the parent passes these to a child
        p.add_argument(hidden, help=argparse.SUPPRESS)
    args = p.parse_args()
    from training.hardware import default_device  # no torch import: a cheap look for a GPU

    smoke = args.cpu_smoke or default_device() == "cpu"
    plan = CPU_SMOKE if smoke else Plan()
    given = {f.name: getattr(args, f.name) for f in fields(Plan)}
    plan = replace(plan, **{k: v for k, v in given.items() if v is not None})
    if args.part:  # child: one part, its result as JSON on the last line
        try:
            result = run_part(args, plan, smoke)
        except Exception as e:
            traceback.print_exc()
            result = {"status": "failed", "reason": f"{type(e).__name__}: {e}"}
        print(json.dumps(result), flush=True)
        return 0

    deadline = time.monotonic() + plan.budget_s
    args.work = tempfile.mkdtemp(prefix="gpu-check-")
    why = " (--cpu-smoke)" if args.cpu_smoke else " (no GPU found)" if smoke else ""
    print(f"[gpu_check] {'CPU smoke' if smoke else 'GPU'} plan{why}: {asdict(plan)}", flush=True)
    info = child("model", args, smoke, deadline)
    results, peak = {"model": info}, None
    if info["status"] != "ok":
        print(f"[gpu_check] model {info['status']}: {info['reason']}")
        print(info.get("log", ""), end="")
        results |= {part: {"status": "skipped", "reason": "no model"} for part in PARTS[1:]}
    else:
        checkpointing = "on" if info["activation_checkpointing"] else "off"
        print(
            f"device: {info['device']}, activation checkpointing {checkpointing}; "
            f"torch {info['torch']}\nmodel: {info['source']}"
        )
        peak = explain_flops(info, plan, args.peak_tflops)
    for part in PARTS[1:]:
        if part in results:
            continue
        if part == "qlora" and info["qlora_refused"]:
            r = {"status": "skipped", "reason": info["qlora_refused"]}
        else:
            r = child(part, args, smoke, deadline, ("--model-dir", info["model_dir"]))
        if r["status"] == "ok" and part != "playground":
            r["mfu"] = r["tokens_per_s"] * 4 * info["params"] / peak if peak else None
            print(
                f"{part}: {r['tokens_per_s']:,.0f} trained tokens/s ({r['timed_tokens']:,} in "
                f"{r['seconds']:.2f} s), peak memory {gb(r['peak_gb'])}, "
                f"MFU {fmt(r['mfu'], '.1%')}"
            )
        elif r["status"] == "ok":
            print(
                f"playground: single reply {r['single_tokens_per_s']:,.1f} tokens/s; base + tuned "
                f"side by side {r['side_tokens_per_s']:,.1f} tokens/s over both rows, "
                f"{r['side_over_single']:.2f}x the single reply's time; "
                f"peak memory {gb(r['peak_gb'])}"
            )
        else:
            print(f"[gpu_check] {part} {r['status']}: {r['reason']}")
            print(r.get("log", ""), end="")
        results[part] = r
    shutil.rmtree(args.work, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"plan": asdict(plan), **results}, indent=1))

    rows = [row for part in PARTS[1:] for row in summary_rows(part, results[part], plan)]
    print("\nsummary (tokens/s: trained tokens in training, new tokens of all rows in replies)")
    print(f"{'part':<22}{'status':<9}{'tokens/s':>10}{'peak GB':>9}{'MFU':>7}  note")
    for part, status, tps, memory, mfu, note in rows:
        line = f"{part:<22}{status:<9}{fmt(tps, ',.0f'):>10}{fmt(memory, '.2f'):>9}"
        line += f"{fmt(mfu, '.1%'):>7}"
        print(f"{line}  {note[:100]}")
    return 1 if any(r["status"] == "failed" for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
