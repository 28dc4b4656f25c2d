"""Reads AutoTrain Advanced's console output (stdout and stderr merged) as it streams.

What it turns into run-directory terms (training/jobs/rundir.py):
- `... autotrain.trainers.common:on_log:367 - {'loss': 6.1, 'learning_rate': ..., 'epoch': 0.5}`
  loguru lines become progress records; the k-th loss line is step k x logging_steps (read
  from AutoTrain's own "Logging steps: N" line), which is exact, unlike tqdm's throttled bar.
- the trainer's tqdm bar, `\\r 25%|██▌ | 1/4 [00:01<00:03, 1.20it/s]` (no description, unit
  it/s or s/it; dataset bars say "Map:" or examples/s), gives total steps, elapsed, ETA, rate.
- `train has failed due to an exception:` + traceback + a final ERROR line with the message:
  the run failed although AutoTrain exits 0. `error` holds that message for status.json.
Pure text in, events out, so tests replay captured logs (tests/fixtures/autotrain/).
"""

import ast
import re

BAR = re.compile(
    r"^\s*\d+%\|[^|]*\|\s*(\d+)/(\d+) \[([\d:]+)<([\d:?]+)(?:,\s*([\d.]+)(it/s|s/it))?[^\]]*\]"
)
ANY_BAR = re.compile(r"\[\d+:\d\d(?::\d\d)?[<,\]]")  # tqdm's "[00:01<..." timing block
RECORD = re.compile(
    r"(DEBUG|INFO|SUCCESS|WARNING|ERROR|CRITICAL)\s*\| \d{4}-\d\d-\d\d [\d:]+ \| (\S+) - (.*)"
)
EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt)): (.+)")
LOGGING_STEPS = re.compile(r"Logging steps: (\d+)")
FAILED = "has failed due to an exception"
# Milestones worth showing in status.json while nothing else moves (AutoTrain is quiet).
PHASES = {
    "Starting local training": "starting the trainer",
    "Starting SFT training": "preparing data",
    "loading model...": "loading the model",
    "Starting to train...": "training",
    "Finished training, saving model": "saving the adapter",
}


def seconds(clock: str) -> float | None:
    """tqdm's '01:02' / '1:02:03' -> seconds; '?' -> None."""
    try:
        parts = [int(p) for p in clock.split(":")]
    except ValueError:
        return None
    total = 0
    for p in parts:
        total = total * 60 + p
    return float(total)


class AutoTrainLog:
    """feed() text chunks as they arrive; get back events:
    ("line", str)      a readable line for train.log (tqdm redraws dropped)
    ("progress", dict) a progress.jsonl record
    ("phase", str)     AutoTrain reached a milestone (PHASES)"""

    def __init__(self, logging_steps: int = 1, tokens_per_step: int | None = None):
        self.logging_steps = logging_steps
        self.tokens_per_step = tokens_per_step  # packed blocks: batch x accum x block_size
        self.buffer = ""
        self.training = False  # seen "Starting to train...": bars from now on are the trainer's
        self.total_steps: int | None = None
        self.bar: dict = {}  # latest trainer bar: step, elapsed, eta, rate (steps/s)
        self.losses = 0  # loss records seen
        self.step = 0
        self.last: dict = {}  # latest progress record
        self.summary: dict = {}  # the final {'train_runtime': ..., 'train_loss': ...}
        self.failed = False
        self.error: str | None = None  # AutoTrain's failure message
        self.last_exception: str | None = None  # last "XError: message" traceback line
        self.phase: str | None = None

    def feed(self, text: str) -> list[tuple[str, object]]:
        """Complete \\r- or \\n-terminated fragments are parsed; the rest waits for more."""
        self.buffer += text
        *done, self.buffer = re.split(r"[\r\n]", self.buffer)
        events = []
        for fragment in done:
            events += self._fragment(fragment)
        return events

    def flush(self) -> list[tuple[str, object]]:
        rest, self.buffer = self.buffer, ""
        return self._fragment(rest) if rest else []

    def _fragment(self, fragment: str) -> list[tuple[str, object]]:
        events = []
        bar = BAR.match(fragment)
        if bar and self.training:
            self._bar(*bar.groups())
        record = RECORD.search(fragment)
        if record:  # a log record may follow a bar on the same fragment (shared pipe)
            events += self._record(*record.groups())
            events.append(("line", fragment[record.start() :].rstrip()))
            return events
        text = fragment.strip()
        if bar := ANY_BAR.search(text):  # a bar redraw, maybe with a warning glued after it
            text = text[text.find("]", bar.start()) + 1 :].strip()
            fragment = text
        if not text:
            return events
        if text.startswith("{'") and text.endswith("}"):
            return events  # transformers' plain echo of the on_log dict shown above
        exception = EXCEPTION.match(text)
        if exception:
            self.last_exception = text
        events.append(("line", fragment.rstrip()))
        return events

    def _bar(self, step, total, elapsed, remaining, rate, unit) -> None:
        total = int(total)
        if self.total_steps is None:
            self.total_steps = total
        elif total != self.total_steps:
            return  # an evaluation bar (validation split): not the training loop
        steps_per_s = None
        if rate:
            steps_per_s = (
                float(rate) if unit == "it/s" else (1 / float(rate) if float(rate) else None)
            )
        self.bar = {
            "step": int(step),
            "elapsed": seconds(elapsed),
            "eta": seconds(remaining),
            "rate": steps_per_s,
        }

    def _record(self, level: str, where: str, message: str) -> list[tuple[str, object]]:
        events = []
        for marker, phase in PHASES.items():
            if message.startswith(marker) and phase != self.phase:
                self.phase = phase
                self.training = self.training or phase == "training"
                events.append(("phase", phase))
        if steps := LOGGING_STEPS.match(message):
            self.logging_steps = int(steps.group(1))
        if FAILED in message:
            self.failed = True
        elif level in ("ERROR", "CRITICAL") and (self.failed or self.error is None):
            self.error = message.strip()
        if ":on_log:" in where and message.startswith("{"):
            try:
                logs = ast.literal_eval(message)
            except (ValueError, SyntaxError):
                return events
            if isinstance(logs, dict):
                record = self._progress(logs)
                if record:
                    events.append(("progress", record))
        return events

    def _progress(self, logs: dict) -> dict | None:
        if "train_runtime" in logs:
            self.summary = logs
            return None
        if "loss" not in logs and "eval_loss" not in logs:
            return None
        if "loss" in logs:
            self.losses += 1
            self.step = self.losses * self.logging_steps
            if self.total_steps:
                self.step = min(self.step, self.total_steps)
        record = {"step": self.step, "total_steps": self.total_steps}
        if logs.get("epoch") is not None:
            record["epoch"] = round(float(logs["epoch"]), 4)
        if "loss" in logs:
            record["loss"] = round(float(logs["loss"]), 6)
            record["learning_rate"] = logs.get("learning_rate")
            rate = self.bar.get("rate")
            if rate and self.tokens_per_step:
                record["tokens_per_second"] = round(rate * self.tokens_per_step, 1)
        else:
            record["eval_loss"] = round(float(logs["eval_loss"]), 6)
        record["elapsed"] = self.bar.get("elapsed")
        record["eta"] = self._eta()
        self.last = record
        return record

    def _eta(self) -> float | None:
        """Seconds left: from the bar's rate at our exact step, else tqdm's own estimate."""
        rate, total = self.bar.get("rate"), self.total_steps
        if rate and total:
            return round(max(total - self.step, 0) / rate, 1)
        return self.bar.get("eta")

    def failure(self) -> str | None:
        """AutoTrain's own words for why the run failed, when the log says it did."""
        if self.failed:
            return self.error or self.last_exception or "AutoTrain reported a failure."
        return None
