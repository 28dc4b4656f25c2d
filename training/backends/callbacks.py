"""Trainer callbacks that connect a TRL run to the run directory protocol.

ProgressCallback  one progress.jsonl line per logging step / evaluation (rank 0 only),
                  plus a readable line in train.log; at every step the phase ("step 3 of
                  30", "evaluating") and the time left into status.json.
StopCallback      graceful cancel: when should_stop() turns true (SIGTERM), stop at the
                  next optimizer-step boundary and write a resumable checkpoint there.
"""

import time
from pathlib import Path

from transformers import TrainerCallback

from training.jobs.rundir import append_progress, note_phase, note_status


class ProgressCallback(TrainerCallback):
    """Records step, total_steps, epoch, loss / eval_loss, learning_rate, tokens_per_second
    (non-padding tokens over the time spent in training steps), elapsed and eta (seconds).

    eta: the steps left at the measured seconds per step (wall time from the end of the first
    step, evaluations and checkpoints included; the first step, which warms up, counts only
    until there is a second), plus tail_seconds (saving at the end). Before the first step has
    ended it is the pre-flight's step_seconds, when given."""

    def __init__(
        self,
        run_dir: Path,
        elapsed_before: float = 0.0,
        step_seconds: float | None = None,
        tail_seconds: float = 0.0,
    ):
        self.run_dir, self.elapsed_before = Path(run_dir), elapsed_before
        self.step_seconds, self.tail_seconds = step_seconds, tail_seconds
        self.step_start = self.first_end = None
        self.evaluating = False

    def on_train_begin(self, args, state, control, **kwargs):
        self.t0 = time.monotonic()
        self.step0 = state.global_step
        self.busy = 0.0  # seconds inside training steps since the last log
        self.tokens_seen = 0
        if state.is_world_process_zero:
            note_phase(self.run_dir, self._phase(state), self.eta(state, self.t0))

    def on_step_begin(self, args, state, control, **kwargs):
        self.step_start = time.monotonic()
        if state.is_world_process_zero and state.global_step > self.step0:
            note_status(
                self.run_dir, phase=self._phase(state), eta=self.eta(state, self.step_start)
            )

    def on_step_end(self, args, state, control, **kwargs):
        now = time.monotonic()
        if self.step_start is not None:
            self.busy += now - self.step_start
        if self.first_end is None:
            self.first_end = now

    def on_prediction_step(self, args, state, control, **kwargs):
        if state.is_world_process_zero and not self.evaluating:
            self.evaluating = True
            note_status(self.run_dir, phase=f"evaluating after step {state.global_step}")

    def on_evaluate(self, args, state, control, **kwargs):
        self.evaluating = False

    def _phase(self, state) -> str:
        return f"step {state.global_step + 1} of {state.max_steps}"

    def eta(self, state, now: float) -> float | None:
        """Seconds left in the run (see the class docstring); None when it cannot be told."""
        done = state.global_step - self.step0
        if done >= 2 and self.first_end is not None:
            per_step = (now - self.first_end) / (done - 1)
        elif done >= 1 and self.first_end is not None:
            per_step = self.first_end - self.t0
        else:
            per_step = self.step_seconds
        if per_step is None:
            return None
        remaining = max(state.max_steps - state.global_step, 0)
        return round(remaining * per_step + self.tail_seconds, 1)

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
        record["eta"] = self.eta(state, now) if done > 0 else None
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
