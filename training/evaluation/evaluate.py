"""Did fine-tuning help, and was it worth it? Base vs tuned vs few-shot base on held-out rows.

    python -m training eval RUN_DIR --json                   # the run's validation split
    python -m training eval RUN_DIR --data test.jsonl --limit 50

For each held-out conversation the prompt is everything before its last assistant turn and
the reference is that turn. Three sides answer it with greedy decoding from the one loaded
base model: base, tuned (the run's adapter) and base + k training examples as prior turns
(the prompt-engineering baseline). Metrics (training/evaluation/metrics.py): validation loss /
perplexity on assistant tokens only (the training masking, training/data/labels.py), exact
match (case, spacing and a final punctuation mark ignored), ROUGE-L F1 on word tokens, and
JSON validity / same keys / field match when the references are JSON. One of them decides,
chosen from the references (metrics.choose_metric): a row is a win when its score is strictly
higher, and the verdict calls an improvement only when a sign test on wins vs losses gives
p < 0.05 (metrics.verdict). The per-row table and the report go to RUN_DIR/eval/rows.jsonl
and RUN_DIR/eval/report.json.

On ZeroGPU (training/zerogpu.py) the model work runs in one `@spaces.GPU` call, in spaces'
worker process with its own engine; the app reads the rows first and sends as many as fit in
one call (the verdict says so when that is fewer than asked).

Its length: the three arms (tuned, base, few-shot base), the verdict and the CLI are one
report; metrics live in metrics.py.
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

from training import zerogpu
from training.chat.columns import few_shot_turns, prompt_and_reference
from training.chat.engine import ChatEngine, Row, Settings, adapter_mode, device_engine
from training.evaluation.metrics import (
    METRICS,
    RULE,
    choose_metric,
    compare,
    outcome,
    parse_json,
    row_scores,
    verdict,
)
from training.jobs import rundir
from training.jobs.runs import adapter_path, run_config, run_examples, tokenizer_dir

SIDES = ("base", "tuned", "few_shot")
EVAL_DIR = "eval"


# --- evaluation --------------------------------------------------------------------------
def token_losses(engine: ChatEngine, base_model: str, tok, encoded: list[dict], adapter) -> list:
    """(summed loss, trained tokens) per encoded row, base (adapter None) or tuned. The lock
    is taken per chunk, so a Playground reply can slip in between."""
    import torch

    results, pad = [], tok.pad_token_id or 0
    for start in range(0, len(encoded), 4):
        chunk = encoded[start : start + 4]
        width = max(len(e["input_ids"]) for e in chunk)
        fill = [width - len(e["input_ids"]) for e in chunk]
        ids = torch.tensor([e["input_ids"] + [pad] * f for e, f in zip(chunk, fill, strict=True)])
        labels = torch.tensor([e["labels"] + [-100] * f for e, f in zip(chunk, fill, strict=True)])
        mask = (
            torch.arange(width)[None, :] < torch.tensor([width - f for f in fill])[:, None]
        ).long()
        with engine.lock:
            model, names = engine.model(base_model, [adapter] if adapter else [])
            device = next(model.parameters()).device
            with adapter_mode(model, names or ["__base__"]) as kwargs, torch.inference_mode():
                logits = model(
                    input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs
                ).logits
        target = labels[:, 1:].to(device)
        nll = torch.nn.functional.cross_entropy(
            logits[:, :-1].float().transpose(1, 2), target, reduction="none", ignore_index=-100
        )
        results += [
            (a.sum().item(), int((t != -100).sum())) for a, t in zip(nll, target, strict=True)
        ]
    return results


def mean_loss(pairs: list) -> float | None:
    tokens = sum(n for _, n in pairs)
    return sum(s for s, _ in pairs) / tokens if tokens else None


def with_shots(messages: list[dict], shots: list[dict], weight: int | None = None) -> list[dict]:
    """System message (if any) first, then the few-shot turns, then the conversation."""
    system = [m for m in messages[:1] if m["role"] == "system"]
    primed = [dict(m, weight=weight) if weight is not None else m for m in shots]
    return system + primed + messages[len(system) :]


def load_rows(run_dir: Path, data: str | None, cfg) -> tuple[list[dict], list[dict], str]:
    """(held-out examples, training examples, where the held-out rows came from)."""
    try:
        train, val = run_examples(run_dir)
    except (ValueError, OSError):
        if not data:
            raise
        train, val = [], []  # the training file is gone: no few-shot baseline
    if data:
        from training.data import load_examples

        return load_examples(data, fmt=None, mapping=cfg.column_mapping or None), train, data
    if not val:
        raise ValueError("This run has no validation split; pass --data FILE with held-out rows.")
    return val, train, "validation split"


class _Eval:
    """One evaluation's fixed inputs, so the steps below stay short."""

    def __init__(self, run_dir: Path, checkpoint: str, engine: ChatEngine):
        self.run_dir, self.engine, self.cfg = run_dir, engine, run_config(run_dir)
        self.adapter = adapter_path(run_dir, checkpoint)
        if not rundir.adapter_ready(self.adapter):
            raise ValueError(f"{run_dir.name} has no adapter for {checkpoint!r} yet.")
        self.tok_dir = tokenizer_dir(run_dir, checkpoint)
        self.tok = engine.tokenizer(self.cfg.model, self.tok_dir, self.cfg.trust_remote_code)

    def losses(self, items, shots) -> dict:
        from training.data.labels import encode_example

        cfg, tok = self.cfg, self.tok
        encoded = [encode_example(tok, e, cfg.max_length) for e, _ in items]
        out = {
            "base": token_losses(self.engine, cfg.model, tok, encoded, None),
            "tuned": token_losses(self.engine, cfg.model, tok, encoded, self.adapter),
        }
        if shots:  # loss on the row's own assistant tokens: the shots are context (weight 0)
            rendered = tok.apply_chat_template(shots, tokenize=False)
            room = cfg.max_length + len(tok(rendered, add_special_tokens=False)["input_ids"])
            primed = [{"messages": with_shots(e["messages"], shots, weight=0)} for e, _ in items]
            encoded = [encode_example(tok, e, room) for e in primed]
            out["few_shot"] = token_losses(self.engine, cfg.model, tok, encoded, None)
        return out

    def replies(self, prompts: list[list[dict]], shots, settings) -> list[dict]:
        """{side: Reply} per prompt. Base and tuned share one mixed batch; few-shot rows are
        much longer, so they get their own batch instead of padding the others to their length."""

        def run(rows):
            return self.engine.generate(
                self.cfg.model,
                rows,
                settings,
                tokenizer_dir=self.tok_dir,
                trust_remote_code=self.cfg.trust_remote_code,
            )

        pairs = run([r for p in prompts for r in (Row(p), Row(p, self.adapter))])
        few = run([Row(with_shots(p, shots)) for p in prompts]) if shots else []
        return [
            {"base": pairs[2 * i], "tuned": pairs[2 * i + 1]}
            | ({"few_shot": few[i]} if shots else {})
            for i in range(len(prompts))
        ]


def summarise(rows: list[dict], losses: dict) -> dict:
    """Per-side means of the row scores, loss / perplexity, prompt and reply lengths."""
    report = {}
    for side in SIDES:
        if side not in rows[0]["outputs"]:
            report[side] = None
            continue
        keys = rows[0]["scores"][side]
        metrics = {k: sum(r["scores"][side][k] for r in rows) / len(rows) for k in keys}
        loss = mean_loss(losses[side])
        metrics["loss"] = loss
        metrics["perplexity"] = math.exp(min(loss, 50)) if loss is not None else None
        for key in ("prompt_tokens", "generated_tokens"):
            metrics[key] = sum(r[key][side] for r in rows) / len(rows)
        report[side] = metrics
    return report


def evaluate_run(
    run_dir,
    data=None,
    limit=None,
    checkpoint="final",
    few_shot_k=3,
    max_new_tokens=None,
    batch_size=4,
    engine=None,
    progress=None,
    note="",
) -> dict:
    """Run the comparison, save eval/rows.jsonl + eval/report.json, return the report.
    note: a sentence added to the verdict."""
    say = progress or (lambda fraction, message: None)
    started, run_dir, engine = time.monotonic(), Path(run_dir), engine or ChatEngine()
    ev = _Eval(run_dir, checkpoint, engine)
    held_out, train, source = load_rows(run_dir, data, ev.cfg)
    items = [(e, p) for e in held_out if (p := prompt_and_reference(e))][: limit or None]
    if not items:
        raise ValueError("No held-out conversation with an assistant reply to compare against.")
    shots = few_shot_turns(train, few_shot_k, ev.cfg.seed) if few_shot_k else []
    json_refs = all(parse_json(ref) is not None for _, (_, ref) in items)
    metric, metric_reason = choose_metric([ref for _, (_, ref) in items])
    if max_new_tokens is None:  # room for the longest reference and then some, greedy stops early
        longest = max(
            len(ev.tok(ref, add_special_tokens=False)["input_ids"]) for _, (_, ref) in items
        )
        max_new_tokens = min(512, max(16, int(longest * 1.5) + 16))
    if engine.zero_gpu:
        args = (data, len(items), checkpoint, few_shot_k, max_new_tokens, batch_size)
        return _on_zero_gpu(run_dir, ev.cfg.model, bool(shots), args, say)

    say(0.05, f"Loss on {len(items)} held-out rows")
    losses = ev.losses(items, shots)
    rows, settings = [], Settings(temperature=0, max_new_tokens=max_new_tokens)
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        say(
            0.2 + 0.75 * start / len(items),
            f"Generating rows {start + 1}-{start + len(chunk)} of {len(items)}",
        )
        for j, got in enumerate(ev.replies([p for _, (p, _) in chunk], shots, settings)):
            prompt, ref = chunk[j][1]
            rows.append(
                {
                    "index": start + j,
                    "prompt": prompt[-1]["content"],
                    "reference": ref,
                    "outputs": {s: r.text for s, r in got.items()},
                    "scores": {s: row_scores(r.text, ref, json_refs) for s, r in got.items()},
                    "prompt_tokens": {s: r.stats.prompt_tokens for s, r in got.items()},
                    "generated_tokens": {s: r.stats.generated_tokens for s, r in got.items()},
                }
            )
    report = {"rows": len(rows)} | summarise(rows, losses)
    vs_base = compare(rows, "tuned", "base", metric)
    vs_few = compare(rows, "tuned", "few_shot", metric) if shots else None
    saved = (
        report["few_shot"]["prompt_tokens"] - report["tuned"]["prompt_tokens"] if shots else None
    )
    for r in rows:
        duel = outcome(r["scores"]["tuned"][metric], r["scores"]["base"][metric])
        r["winner"] = {"win": "tuned", "loss": "base", "tie": "tie"}[duel]
    said = verdict(vs_base, vs_few, few_shot_k, saved, metric)
    report |= {
        "verdict": f"{said.headline} {said.details}{note}",
        "headline": said.headline,
        "outcome": said.outcome,
        "metric": metric,
        "metric_reason": metric_reason,
        "tuned_vs_base": vs_base,
        "tuned_vs_few_shot": vs_few,
        "prompt_tokens_saved_per_request": saved,
        "references_json": json_refs,
        "few_shot_k": few_shot_k if shots else 0,
        "checkpoint": checkpoint,
        "model": ev.cfg.model,
        "data": source,
        "max_new_tokens": max_new_tokens,
        "seconds": round(time.monotonic() - started, 1),
    }
    save_report(run_dir, report, rows)
    say(1.0, "Done")
    return report


def _on_zero_gpu(run_dir: Path, model: str, few_shot: bool, args: tuple, say) -> dict:
    """The evaluation in one GPU call, with as many of the rows as fit in it."""
    data, rows, checkpoint, few_shot_k, new_tokens, batch_size = args
    fit = zerogpu.eval_rows_that_fit(model, new_tokens, batch_size, few_shot)
    longest = f"one ZeroGPU call of at most {zerogpu.MAX_SECONDS} s"
    if not fit:
        raise ValueError(
            f"Evaluating this model does not fit in {longest}. Lower the reply length, or run "
            "`python -m training eval RUN_DIR` on a machine with a GPU."
        )
    note = f" Evaluated {fit} of {rows} rows: what fits in {longest}." if fit < rows else ""
    say(0.05, "Waiting for a GPU (ZeroGPU)")
    limit = min(rows, fit)
    report = _evaluate_on_gpu(
        str(run_dir), data, limit, checkpoint, few_shot_k, new_tokens, batch_size, note
    )
    say(1.0, "Done")
    return report


def _evaluate_in_worker(run_dir, data, limit, checkpoint, few_shot_k, new_tokens, batch_size, note):
    """Inside the GPU call: the evaluation with the worker process's engine."""
    engine = device_engine()
    args = (data, limit, checkpoint, few_shot_k, new_tokens, batch_size)
    return evaluate_run(run_dir, *args, engine=engine, note=note)


def _eval_seconds(run_dir, data, limit, checkpoint, few_shot_k, new_tokens, batch_size, note):
    model = run_config(Path(run_dir)).model
    return zerogpu.eval_seconds(model, limit, new_tokens, batch_size, few_shot_k > 0)


_evaluate_on_gpu = zerogpu.gpu(_evaluate_in_worker, duration=_eval_seconds)


def save_report(run_dir: Path, report: dict, rows: list[dict]) -> Path:
    folder = Path(run_dir) / EVAL_DIR
    folder.mkdir(exist_ok=True)
    tmp = folder / ".rows.jsonl.tmp"
    tmp.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    tmp.replace(folder / "rows.jsonl")
    rundir.write_json_atomic(folder / "report.json", report)
    return folder


def read_report(run_dir: Path) -> tuple[dict | None, list[dict]]:
    """The saved report and per-row table, or (None, []) before the first evaluation."""
    folder = Path(run_dir) / EVAL_DIR
    try:
        report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        lines = (folder / "rows.jsonl").read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError):
        return None, []
    return report, [json.loads(line) for line in lines if line.strip()]


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="python -m training eval",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", type=Path, help="a run directory (holds config.yaml and adapter/)")
    p.add_argument("--data", help="held-out rows to use instead of the run's validation split")
    p.add_argument("--limit", type=int, help="evaluate at most N rows")
    p.add_argument("--checkpoint", default="final", help="'final' or checkpoint-N")
    p.add_argument(
        "--few-shot", type=int, default=3, help="examples in the few-shot baseline (0 = off)"
    )
    p.add_argument("--max-new-tokens", type=int, help="default: 1.5x the longest reference")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    args = p.parse_args(argv)

    def say(fraction, message):  # progress on stderr: stdout holds only the result
        print(f"[{fraction:4.0%}] {message}", file=sys.stderr, flush=True)

    try:
        report = evaluate_run(
            args.run_dir,
            args.data,
            args.limit,
            args.checkpoint,
            args.few_shot,
            args.max_new_tokens,
            progress=say,
        )
    except (ValueError, OSError) as exc:
        print(
            json.dumps({"error": str(exc)}) if args.json else f"error: {exc}",
            file=sys.stdout if args.json else sys.stderr,
        )
        return 1
    if args.json:
        print(json.dumps(report))
        return 0
    print(report["verdict"])
    print(f"{report['metric_reason']}\n{RULE}")
    print(f"\n{'':<16}" + "".join(f"{s:>12}" for s in SIDES))
    for key in METRICS:
        values = [(report[s] or {}).get(key) for s in SIDES]
        if any(v is not None for v in values):
            print(
                f"{key:<16}"
                + "".join(f"{v:>12.3f}" if v is not None else f"{'-':>12}" for v in values)
            )
    print(f"\nper-row table: {args.run_dir / EVAL_DIR / 'rows.jsonl'}")
    return 0
