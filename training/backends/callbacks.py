"""Trainer callbacks that connect a TRL run to the run directory protocol.

ProgressCallback  one progress.jsonl line per logging step / evaluation (rank 0 only),
                  plus a readable line in train.log.
StopCallback      graceful cancel: when should_stop() turns true (SIGTERM), stop at the
                  next optimizer-step boundary and write a resumable checkpoint there.
"""

import time
from pathlib import Path

from transformers import TrainerCallback

from training.jobs.rundir import append_progress


class ProgressCallback(TrainerCallback):
    """Records step, total_steps, epoch, loss / eval_loss, learning_rate, tokens_per_second
    (non-padding tokens over the time spent in training steps), elapsed and eta (seconds)."""

    def __init__(self, run_dir: Path, elapsed_before: float = 0.0):
        self.run_dir, self.elapsed_before = Path(run_dir), elapsed_before
        self.step_start = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.t0 = time.monotonic()
        self.step0 = state.global_step
        self.busy = 0.0  # seconds inside training steps since the last log
        self.tokens_seen = 0

    def on_step_begin(self, args, state, control, **kwargs):
        self.step_start = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if self.step_start is not None:
            self.busy += time.monotonic() - self.step_start

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if not state.is_world_process_zero or not ({"loss", "eval_loss"} & logs.keys()):
            return  # other ranks, and the end-of-training summary (train_loss, runtime)
        now = time.monotonic()
        done = state.global_step - self.step0
        record = {"step": state.global_step, "total_steps": state.max_steps}
        record["epoch"] = round(state.epoch or 0.0, 4)
        if "loss" in logs:
            record["loss"] = round(float(logs["loss"]), 6)
            record["learning_rate"] = logs.get("learning_rate")
            tokens = logs.get("num_tokens")  # TRL: cumulative attention-mask sum, all ranks
            if tokens is not None and self.busy > 0:
                tokens = int(tokens)
                new = tokens - self.tokens_seen if tokens >= self.tokens_seen else tokens
                record["tokens_per_second"] = round(new / self.busy, 1)
                self.tokens_seen, self.busy = tokens, 0.0
        else:
            record["eval_loss"] = round(float(logs["eval_loss"]), 6)
        record["elapsed"] = round(self.elapsed_before + now - self.t0, 2)
        remaining = max(state.max_steps - state.global_step, 0)
        record["eta"] = round(remaining * (now - self.t0) / done, 1) if done > 0 else None
        append_progress(self.run_dir, record)
        shown = " ".join(f"{k}={v}" for k, v in record.items() if k not in ("total_steps",))
        print(f"[progress] {state.global_step}/{state.max_steps} {shown}", flush=True)


class StopCallback(TrainerCallback):
    def __init__(self, should_stop):
        self.should_stop = should_stop
        self.stopped = False

    def on_step_end(self, args, state, control, **kwargs):
        stop = bool(self.should_stop())
        if args.world_size > 1:
            # Ranks receive the signal at slightly different moments; agree on the same step,
            # or one rank would wait forever in the next step's gradient all-reduce.
            import torch
            import torch.distributed as dist

            flag = torch.tensor([int(stop)], device=args.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = bool(flag.item())
        if stop:
            self.stopped = True
            control.should_training_stop = True
            control.should_save = args.save_strategy != "no"  # resumable from exactly here
        return control
