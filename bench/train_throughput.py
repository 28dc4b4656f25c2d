"""Trained tokens per second: our training path vs plain TRL SFTTrainer defaults.

    .venv/bin/python bench/train_throughput.py                     # tiny model, ~1 min on 2 CPUs
    .venv/bin/python bench/train_throughput.py --model bundled/SmolLM2-135M-Instruct --rows 256

Both arms train the same model, LoRA config, seed, learning-rate schedule, batch size and
number of optimizer steps (one full epoch, so both see every example exactly once) on the
same pre-tokenized data (assistant-only labels from training/data/labels.py), even the same
batches (TRL's random sampler, same seed): the only difference is how a batch is computed.
The baseline pads each batch to its longest example; ours (training/backends/lora.build_trainer,
training/backends/batching.py) runs it as unpadded sub-batches with the same gradient. The
dataset has skewed lengths: most chats are short, a few are long, as in real data. Precision (fp32 on CPU) and activation
checkpointing (off on CPU) are set the same in both arms, TRL's defaults differ there, so
that padding is the only thing measured.

Figures: trained (non-padding) tokens/s; padding waste = processed tokens / real tokens;
peak memory (max RSS of each arm's own process on CPU, max allocated on CUDA); loss on the
same held-out set, computed identically for both (the 2 % criterion), and the mean train loss.
Each arm runs in its own subprocess. The ratio is printed last: `train_throughput: <x>x`.
"""

import argparse
import json
import math
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WORDS = (  # the tiny test tokenizer's training text, so tokens are realistic multi-char pieces
    ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "fine", "tuning", "adapts"]
    + ["a", "pretrained", "language", "model", "to", "new", "data", "write", "haiku", "about"]
    + ["autumn", "leaves", "falling", "softly", "ground", "capital", "of", "france", "paris"]
)


def make_examples(n: int, seed: int) -> list[dict]:
    """Chats with skewed lengths: 85 % short answers (5-30 words), 15 % long (150-300)."""
    rng = random.Random(seed)
    examples = []
    for _ in range(n):
        words = rng.randint(150, 300) if rng.random() < 0.15 else rng.randint(5, 30)
        question = " ".join(rng.choices(WORDS, k=rng.randint(4, 12)))
        answer = " ".join(rng.choices(WORDS, k=words))
        examples.append(
            {
                "messages": [
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": answer},
                ]
            }
        )
    return examples


def held_out_loss(model, rows) -> float:
    """Mean loss per trained token, one example at a time (no padding): same for both arms."""
    import torch

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for row in rows:
            ids = torch.tensor([row["input_ids"]], device=model.device)
            labels = torch.tensor([row["labels"]], device=model.device)
            n = int((labels[:, 1:] != -100).sum())
            total += model(input_ids=ids, labels=labels).loss.item() * n
            count += n
    return total / count


def run_arm(arm: str, args) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from training.backends.batching import CountingCollator
    from training.backends.lora import build_trainer, lora_config
    from training.config import RunConfig
    from training.data.labels import encode_examples
    from training.hardware import detect, own_peak_rss_mb, torch_dtype
    from training.models.catalogue import chat_tokenizer, resolve_model

    hw = detect()
    cfg = RunConfig(
        model=args.model,
        data="bench",
        batch_size=args.batch_size,
        grad_accum=1,
        max_length=args.max_length,
        epochs=1,
        eval_steps=0,
        save_steps=0,
        logging_steps=10,
        seed=args.seed,
    )
    tok = chat_tokenizer(cfg.model, cfg.trust_remote_code)
    rows, _ = encode_examples(tok, make_examples(args.rows, args.seed), cfg.max_length)
    held, _ = encode_examples(tok, make_examples(64, args.seed + 1), cfg.max_length)
    torch.manual_seed(cfg.seed)
    model = AutoModelForCausalLM.from_pretrained(
        resolve_model(cfg.model), dtype=torch_dtype(hw.precision)
    )
    out = Path(tempfile.mkdtemp(prefix=f"bench-{arm}-"))
    if arm == "ours":
        trainer = build_trainer(cfg, model, tok, rows, [], out, hw)
    else:  # TRL defaults, except what must match for a fair comparison
        targs = SFTConfig(
            output_dir=str(out),
            num_train_epochs=1,
            per_device_train_batch_size=cfg.batch_size,
            learning_rate=cfg.learning_rate,
            lr_scheduler_type=cfg.lr_scheduler,
            warmup_steps=cfg.warmup_ratio,
            max_length=cfg.max_length,
            seed=cfg.seed,
            bf16=hw.precision == "bf16",
            fp16=hw.precision == "fp16",
            activation_checkpointing=hw.activation_checkpointing,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            logging_steps=10,
        )
        collator = CountingCollator(DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id))
        trainer = SFTTrainer(
            model=model,
            args=targs,
            train_dataset=Dataset.from_list(rows),
            processing_class=tok,
            peft_config=lora_config(cfg),
            data_collator=collator,
        )
    if hw.cuda:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - start
    counter = trainer if arm == "ours" else trainer.data_collator  # .processed / .real tokens
    peak = torch.cuda.max_memory_allocated() / 2**20 if hw.cuda else own_peak_rss_mb()
    return {
        "arm": arm,
        "steps": trainer.state.global_step,
        "seconds": seconds,
        "real_tokens": counter.real,
        "processed_tokens": counter.processed,
        "tokens_per_second": counter.real / seconds,
        "padding_waste": counter.processed / counter.real,
        "peak_memory_mb": peak,
        "train_loss": output.training_loss,
        "held_out_loss": held_out_loss(trainer.model, held),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", help="model folder or catalogue key (default: a tiny test model)")
    p.add_argument("--rows", type=int, default=1024)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=2, help="runs per arm; the fastest counts")
    p.add_argument("--arm", choices=("ours", "baseline"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.arm:  # child process: one arm, JSON on the last line
        print(json.dumps(run_arm(args.arm, args)), flush=True)
        return 0
    if not args.model:
        from tests.assets import build_tiny_model

        args.model = str(build_tiny_model(Path(tempfile.mkdtemp(prefix="bench-tiny-"))))
    results = {"baseline": [], "ours": []}
    # Alternate the arms and keep each one's fastest run: a shared machine's other load
    # then penalises neither side systematically. Runs are deterministic but for timing.
    for _ in range(args.repeats):
        for arm in results:
            cmd = [
                sys.executable,
                __file__,
                "--arm",
                arm,
                "--model",
                args.model,
                "--rows",
                str(args.rows),
                "--batch-size",
                str(args.batch_size),
                "--max-length",
                str(args.max_length),
                "--seed",
                str(args.seed),
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
                return 1
            results[arm].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    base, ours = (min(results[arm], key=lambda r: r["seconds"]) for arm in ("baseline", "ours"))
    print(
        f"model {args.model}; {args.rows} chats (85 % short, 15 % long), batch {args.batch_size}, "
        f"max_length {args.max_length}, one epoch = {ours['steps']} steps each, "
        f"fastest of {args.repeats} runs per arm"
    )
    print(f"{'':24}{'baseline (TRL)':>16}{'ours':>12}")
    rows = [
        ("real tokens", "real_tokens", "{:.0f}"),
        ("processed tokens", "processed_tokens", "{:.0f}"),
        ("padding waste", "padding_waste", "{:.3f}"),
        ("train time (s)", "seconds", "{:.1f}"),
        ("trained tokens/s", "tokens_per_second", "{:.0f}"),
        ("peak memory (MB)", "peak_memory_mb", "{:.0f}"),
        ("mean train loss", "train_loss", "{:.4f}"),
        ("held-out loss", "held_out_loss", "{:.4f}"),
    ]
    for label, key, fmt in rows:
        print(f"{label:<24}{fmt.format(base[key]):>16}{fmt.format(ours[key]):>12}")
    loss_gap = (ours["held_out_loss"] - base["held_out_loss"]) / base["held_out_loss"]
    print(f"held-out loss difference: {loss_gap:+.2%} (criterion: within 2 %)")
    print(f"peak memory ours / baseline: {ours['peak_memory_mb'] / base['peak_memory_mb']:.2f}")
    assert math.isfinite(loss_gap)
    print(f"train_throughput: {ours['tokens_per_second'] / base['tokens_per_second']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
