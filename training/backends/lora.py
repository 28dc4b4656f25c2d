"""The LoRA / QLoRA backend: TRL's SFTTrainer with a PEFT adapter, in the worker's process.

What it adds to plain TRL (see training/data/labels.py and training/backends/batching.py):
loss on assistant turns only, for any chat template; training steps that skip the padding
(TRL's own batches, run as unpadded sub-batches with the same gradient); precision and
activation checkpointing chosen from the hardware (training/hardware.py) instead of TRL's
defaults (bf16 on, lr 2e-5); progress lines and graceful cancel (backends/callbacks.py);
an adapter published atomically. 4-bit QLoRA only where CUDA and bitsandbytes are present.
"""

import math
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from training import tracking
from training.backends import Splits
from training.backends.preflight import (
    LOAD_S_PER_GB,
    SAVE_S,
    TRAINER_S,
    count_params,
    load_model_config,
    tokens_per_second,
)
from training.config import RunConfig
from training.data.labels import encode_examples
from training.hardware import Hardware, detect, torch_dtype, world_size
from training.jobs import rundir
from training.models.catalogue import chat_tokenizer, resolve_model


def available() -> tuple[bool, str]:
    return True, "TRL + PEFT in the app's own environment"


def install(gpu: bool = False) -> Iterator[str]:
    """Nothing to install: TRL and PEFT come with the app."""
    yield from ()


def export_config(cfg: RunConfig, path: Path) -> Path:
    """The RunConfig YAML: `python -m training train FILE` runs it anywhere Tunesmith does."""
    cfg.to_yaml(path)
    return Path(path)


class Refused(ValueError):
    """A config this machine cannot run; the message says what to change."""


def check_supported(cfg: RunConfig, hw: Hardware) -> None:
    if cfg.method == "qlora" and not hw.supports_4bit:
        raise Refused(
            f"4-bit QLoRA needs an NVIDIA GPU (CUDA); this machine trains on {hw.name}. "
            "Choose method 'lora' to train here, or run on a GPU Space."
        )
    if cfg.method == "qlora":
        from importlib.util import find_spec

        if find_spec("bitsandbytes") is None:
            raise Refused("4-bit QLoRA needs the bitsandbytes package: pip install bitsandbytes.")


def load_model(cfg: RunConfig, hw: Hardware):
    import torch
    from transformers import AutoModelForCausalLM

    kwargs = {"dtype": torch_dtype(hw.precision), "trust_remote_code": cfg.trust_remote_code}
    if cfg.method == "qlora":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch_dtype(hw.precision),
        )
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", 0))}
    model = AutoModelForCausalLM.from_pretrained(resolve_model(cfg.model), **kwargs)
    if cfg.method == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, hw.activation_checkpointing)
    if cfg.init_adapter:  # continue training a finished run's adapter
        from peft import PeftModel

        adapter = Path(cfg.init_adapter)
        if not (adapter / "adapter_config.json").is_file():  # a run folder works too
            adapter = adapter / rundir.ADAPTER
        model = PeftModel.from_pretrained(model, str(adapter), is_trainable=True)
    torch.manual_seed(cfg.seed)
    return model


def lora_config(cfg: RunConfig):
    from peft import LoraConfig

    targets = cfg.target_modules.strip()
    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets
        if targets == "all-linear"
        else [t.strip() for t in targets.split(",")],
        task_type="CAUSAL_LM",
    )


def sft_config(cfg: RunConfig, output_dir: Path, hw: Hardware, has_val: bool):
    """Every setting that matters is explicit: TRL's own defaults (bf16 on, lr 2e-5,
    activation checkpointing on) are wrong for LoRA on CPU."""
    from trl import SFTConfig

    evaluate = has_val and cfg.eval_steps > 0
    early = cfg.early_stopping_patience > 0 and evaluate
    return SFTConfig(
        output_dir=str(output_dir),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # a float below 1 is a share of the total steps
        max_length=cfg.max_length,
        bf16=hw.precision == "bf16",
        fp16=hw.precision == "fp16",
        activation_checkpointing=hw.activation_checkpointing,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,  # the starting loss, for the chart and "did it learn"
        eval_strategy="steps" if evaluate else "no",
        eval_steps=cfg.eval_steps if evaluate else None,
        save_strategy="steps" if cfg.save_steps else "no",
        save_steps=cfg.save_steps or 500,
        save_total_limit=2,
        load_best_model_at_end=early,
        metric_for_best_model="eval_loss" if early else None,
        greater_is_better=False if early else None,
        seed=cfg.seed,
        data_seed=cfg.seed,
        **tracking.trainer_args(
            cfg.report_to, Path(output_dir).parent, Path(output_dir).parent.name
        ),
        disable_tqdm=True,  # progress goes to progress.jsonl; tqdm's \r bars garble train.log
        ddp_find_unused_parameters=False,
        dataloader_num_workers=0,
    )


def build_trainer(cfg, model, tokenizer, train_rows, val_rows, output_dir, hw, callbacks=()):
    """Our training path, shared with bench/train_throughput.py."""
    from datasets import Dataset
    from transformers import EarlyStoppingCallback, PrinterCallback

    from training.backends.batching import UnpaddedSFTTrainer

    args = sft_config(cfg, output_dir, hw, bool(val_rows))
    val = sorted(val_rows, key=lambda r: len(r["input_ids"]))  # eval order is free: sort it
    callbacks = list(callbacks)
    if args.load_best_model_at_end:
        callbacks.append(EarlyStoppingCallback(cfg.early_stopping_patience))
    trainer = UnpaddedSFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(val) if val else None,
        processing_class=tokenizer,
        peft_config=None if cfg.init_adapter else lora_config(cfg),
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)  # ProgressCallback prints a readable line instead
    return trainer


def train(cfg: RunConfig, run_dir: Path, data: Splits, *, resume: bool, should_stop) -> dict:
    from training.backends.callbacks import ProgressCallback, StopCallback

    run_dir = Path(run_dir)
    hw = detect()
    check_supported(cfg, hw)
    print(f"[lora] device: {hw.describe()}, world_size={world_size()}", flush=True)
    tokenizer = chat_tokenizer(cfg.model, cfg.trust_remote_code)
    train_rows, stats = encode_examples(tokenizer, data.train, cfg.max_length)
    val_rows, val_stats = encode_examples(tokenizer, data.val, cfg.max_length)
    print(f"[lora] train {stats}; validation {val_stats}", flush=True)
    if not train_rows:
        raise ValueError(
            "No training example has anything to learn: each needs an assistant reply "
            "(or text) within the first max_length tokens."
        )
    main = int(os.environ.get("RANK", "0")) == 0
    if resume and main:
        # A kill or a full disk mid-save leaves a checkpoint without its trainer state: gone
        # before the Trainer's rotation could count it and delete a complete one instead.
        for name in rundir.drop_partial_saves(run_dir):
            print(f"[lora] removed the half-written {name}", flush=True)
    checkpoint = rundir.last_checkpoint(run_dir) if resume else None
    if resume:
        found = (
            f"resuming from {checkpoint.name}" if checkpoint else "no checkpoint yet: from step 0"
        )
        print(f"[lora] {found}", flush=True)
    if main:
        # Progress logged after the checkpoint is redone; a fresh start forgets everything.
        rundir.keep_progress_until(
            run_dir, int(checkpoint.name.split("-")[-1]) if checkpoint else 0
        )
        if checkpoint is None:
            shutil.rmtree(run_dir / rundir.CHECKPOINTS, ignore_errors=True)
    kept = rundir.read_progress(run_dir) if checkpoint else []
    elapsed_before = kept[-1].get("elapsed", 0.0) if kept else 0.0

    load_s, step_s, steps = first_estimate(cfg, hw, train_rows)
    if main:
        left = steps - (int(checkpoint.name.split("-")[-1]) if checkpoint else 0)
        eta = None if load_s is None else load_s + max(left, 0) * step_s + SAVE_S
        rundir.note_phase(run_dir, "loading the model", eta)
    model = load_model(cfg, hw)
    stop = StopCallback(should_stop)
    progress = ProgressCallback(run_dir, elapsed_before, step_s, SAVE_S)
    trainer = build_trainer(
        cfg,
        model,
        tokenizer,
        train_rows,
        val_rows,
        run_dir / rundir.CHECKPOINTS,
        hw,
        callbacks=[progress, stop],
    )
    if should_stop():
        return {"status": "cancelled", "metrics": {}, "reason": "Cancelled before training."}
    started = time.monotonic()
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    runtime = time.monotonic() - started
    state = trainer.state
    last = lambda key: next((h[key] for h in reversed(state.log_history) if key in h), None)  # noqa: E731
    tokens = last("num_tokens")  # non-padding tokens processed since this process started
    metrics = {
        "steps": state.global_step,
        "total_steps": state.max_steps,
        "epoch": round(state.epoch or 0.0, 4),
        "train_loss": round(output.training_loss, 6),  # mean over the run
        "final_loss": last("loss"),  # last logged
        "train_runtime_s": round(runtime, 2),
        "tokens_per_second": round(tokens / runtime, 1) if tokens else None,
        "padding_waste": trainer.padding_waste,
        "train_examples": len(train_rows),
        "validation_examples": len(val_rows),
        "skipped_examples": stats["dropped_nothing_to_learn"],
        "truncated_examples": stats["truncated"],
        "trained_tokens_per_epoch": stats["trained_tokens"],
        "device": hw.describe(),
    }
    evaluated = [h for h in state.log_history if "eval_loss" in h]
    # A final evaluation unless the last step was just evaluated; with early stopping the
    # best checkpoint was restored, so its loss is measured again.
    stale = not evaluated or evaluated[-1]["step"] != state.global_step
    if val_rows and not stop.stopped and (stale or trainer.args.load_best_model_at_end):
        evaluated.append({**trainer.evaluate(), "step": state.global_step})
    if evaluated:
        metrics["eval_loss"] = round(evaluated[-1]["eval_loss"], 6)
    if trainer.is_world_process_zero():
        rundir.note_phase(run_dir, "saving the adapter", SAVE_S)
    save_adapter(trainer, cfg, run_dir, metrics)  # every rank: FSDP gathers the weights
    status = "cancelled" if stop.stopped else "completed"
    return {"status": status, "metrics": metrics}


def first_estimate(cfg: RunConfig, hw: Hardware, rows: list[dict]) -> tuple:
    """(seconds to load the model and build the Trainer, seconds per optimizer step, steps) by
    the pre-flight's formulas (training/backends/preflight.py), with the encoded rows' real
    lengths; the measured speed replaces them from the first step. (None, None, steps) when
    the model cannot be sized."""
    per_epoch = math.ceil(math.ceil(len(rows) / (cfg.batch_size * world_size())) / cfg.grad_accum)
    steps = cfg.max_steps if cfg.max_steps > 0 else math.ceil(cfg.epochs * per_epoch)
    try:
        total = count_params(load_model_config(cfg.model), cfg.target_modules, cfg.lora_r)[0]
    except Exception:  # an odd config: the first step's time tells instead
        return None, None, steps
    mean = sum(len(r["input_ids"]) for r in rows) / max(len(rows), 1)
    speed, _ = tokens_per_second(hw, total)
    weights_gb = total * (4 if hw.precision == "fp32" else 2) / 2**30
    load_s = TRAINER_S + weights_gb * LOAD_S_PER_GB
    return load_s, cfg.batch_size * cfg.grad_accum * mean / speed, steps


def save_adapter(trainer, cfg: RunConfig, run_dir: Path, metrics: dict) -> Path | None:
    """Adapter + tokenizer (its chat template is the inference template) + config + metrics,
    built in a staging folder and renamed into RUN_DIR/adapter in one step, by rank 0. Called
    on every rank: under FSDP each rank holds a shard of every weight, so all take part in
    gathering the adapter's (only those: the base weights never leave their shards)."""
    adapter = None
    if trainer.is_fsdp_enabled:
        model = trainer.accelerator.unwrap_model(trainer.model)
        adapter = {n: p.full_tensor().cpu() for n, p in model.named_parameters() if p.requires_grad}
    if not trainer.is_world_process_zero():
        return None
    staging = rundir.adapter_staging(run_dir)
    if adapter is None:
        trainer.save_model(str(staging))  # PEFT adapter files and the tokenizer
    else:  # Trainer.save_model writes no weights for a sharded model
        trainer.accelerator.unwrap_model(trainer.model).save_pretrained(staging, state_dict=adapter)
        trainer.processing_class.save_pretrained(staging)
    cfg.to_yaml(staging / rundir.CONFIG)
    rundir.write_json_atomic(staging / rundir.METRICS, metrics)
    return rundir.publish_adapter(run_dir)
