"""Did fine-tuning help, and was it worth it? Base vs tuned vs two prompted baselines on
held-out rows, and which of the four to use.

    python -m training eval RUN_DIR --json                   # the run's validation split
    python -m training eval RUN_DIR --data test.jsonl --limit 50

For each held-out conversation the prompt is everything before its last assistant turn and
the reference is that turn. Four sides answer it with greedy decoding from the one loaded
base model: base, tuned (the run's adapter), base + k random training examples as prior
turns (few-shot, the prompt-engineering baseline) and base + the k training examples most
like the question (retrieval: BM25 over the training split, never the held-out row itself;
training/chat/columns.py's Retriever). Metrics (training/evaluation/metrics.py): validation loss /
perplexity on assistant tokens only (the training masking, training/data/labels.py), exact
match (case, spacing and a final punctuation mark ignored), ROUGE-L F1 on word tokens, and
JSON validity / same keys / field match when the references are JSON. One of them decides,
chosen from the references (metrics.choose_metric): a row is a win when its score is strictly
higher, and the verdict calls an improvement only when a sign test on wins vs losses gives
p < 0.05 (metrics.verdict). Each side's prompt tokens per request are counted, and its
seconds per request timed on the first LATENCY_ROWS rows, each sent alone. The report ends
with a recommendation, {"choice": "fine_tune" | "retrieval" | "few_shot" | "base",
"reason"}: the cheapest side no dearer side beats by the same rule (training/evaluation/
decision.py). The per-row table and the report go to RUN_DIR/eval/rows.jsonl and
RUN_DIR/eval/report.json, the recommendation with its checklist to RUN_DIR/decision.md.

On ZeroGPU (training/zerogpu.py) the model work runs in one `@spaces.GPU` call, in spaces'
worker process with its own engine; the app reads the rows first and sends as many as fit in
one call (the verdict says so when that is fewer than asked).

Its length: the four arms, the verdict and the CLI are one report; metrics live in
metrics.py, the recommendation in decision.py.
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

from training import zerogpu
from training.chat.columns import Retriever, few_shot_turns, prompt_and_reference
from training.chat.engine import ChatEngine, Row, Settings, adapter_mode, device_engine
from training.evaluation import decision
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

SIDES = ("base", "tuned", "few_shot", "retrieval")
EVAL_DIR = "eval"
LATENCY_ROWS = 3  # rows each side answers alone for its seconds per request


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

    def losses(self, items, shots, retrieved) -> dict:
        from training.data.labels import encode_example

        cfg, tok = self.cfg, self.tok
        encoded = [encode_example(tok, e, cfg.max_length) for e, _ in items]
        out = {
            "base": token_losses(self.engine, cfg.model, tok, encoded, None),
            "tuned": token_losses(self.engine, cfg.model, tok, encoded, self.adapter),
        }
        if shots:
            out["few_shot"] = self.primed_losses(items, [shots] * len(items))
        if retrieved:
            out["retrieval"] = self.primed_losses(items, retrieved)
        return out

    def primed_losses(self, items, shots_each) -> list:
        """Loss on each row's own assistant tokens, its example turns before it as context
        (weight 0), with room for them on top of the run's max length."""
        from training.data.labels import encode_example

        cfg, tok, encoded = self.cfg, self.tok, []
        for (e, _), shots in zip(items, shots_each, strict=True):
            rendered = tok.apply_chat_template(shots, tokenize=False) if shots else ""
            room = cfg.max_length + len(tok(rendered, add_special_tokens=False)["input_ids"])
            primed = {"messages": with_shots(e["messages"], shots, weight=0)}
            encoded.append(encode_example(tok, primed, room))
        return token_losses(self.engine, cfg.model, tok, encoded, None)

    def generate(self, rows: list[Row], settings) -> list:
        return self.engine.generate(
            self.cfg.model,
            rows,
            settings,
            tokenizer_dir=self.tok_dir,
            trust_remote_code=self.cfg.trust_remote_code,
        )

    def replies(self, asked: dict[str, list[list[dict]]], settings) -> list[dict]:
        """{side: Reply} per prompt ({side: its conversations}). Base and tuned share one mixed
        batch; the prompted sides carry example turns and are much longer, so they share
        another instead of padding the others to their length."""
        prompts, primed = asked["base"], [s for s in asked if s not in ("base", "tuned")]
        pairs = self.generate(
            [r for p in prompts for r in (Row(p), Row(p, self.adapter))], settings
        )
        got = [{"base": pairs[2 * i], "tuned": pairs[2 * i + 1]} for i in range(len(prompts))]
        if primed:
            long = self.generate([Row(m) for side in primed for m in asked[side]], settings)
            for j, side in enumerate(primed):
                for i, reply in enumerate(long[j * len(prompts) : (j + 1) * len(prompts)]):
                    got[i][side] = reply
        return got

    def latencies(self, asked: dict[str, list[list[dict]]], settings) -> dict[str, float]:
        """Mean seconds per request of each side ({side: its conversations}), each request
        sent alone, the sides taking turns row by row so a busy machine slows them alike."""
        seconds = {side: [] for side in asked}
        for i in range(len(asked["base"])):
            for side, conversations in asked.items():
                row = Row(conversations[i], self.adapter if side == "tuned" else None)
                seconds[side].append(self.generate([row], settings)[0].stats.latency_s)
        return {side: sum(t) / len(t) for side, t in seconds.items() if t}


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
    retrieval_k=3,
    timed_rows=LATENCY_ROWS,
) -> dict:
    """Run the comparison, save eval/rows.jsonl + eval/report.json and decision.md, return
    the report. note: a sentence added to the verdict. few_shot_k, retrieval_k: examples in
    each prompted baseline (0: that side is not run). timed_rows: rows each side answers
    alone, timed (0: seconds per request not measured)."""
    say = progress or (lambda fraction, message: None)
    started, run_dir, engine = time.monotonic(), Path(run_dir), engine or ChatEngine()
    ev = _Eval(run_dir, checkpoint, engine)
    held_out, train, source = load_rows(run_dir, data, ev.cfg)
    items = [(e, p) for e in held_out if (p := prompt_and_reference(e))][: limit or None]
    if not items:
        raise ValueError("No held-out conversation with an assistant reply to compare against.")
    shots = few_shot_turns(train, few_shot_k, ev.cfg.seed) if few_shot_k else []
    retriever = Retriever(train) if retrieval_k else None
    retrieved = (
        [retriever.turns(p, retrieval_k, leave_out=e) for e, (p, _) in items]
        if retriever and retriever.chats
        else []
    )
    json_refs = all(parse_json(ref) is not None for _, (_, ref) in items)
    metric, metric_reason = choose_metric([ref for _, (_, ref) in items])
    if max_new_tokens is None:  # room for the longest reference and then some, greedy stops early
        longest = max(
            len(ev.tok(ref, add_special_tokens=False)["input_ids"]) for _, (_, ref) in items
        )
        max_new_tokens = min(512, max(16, int(longest * 1.5) + 16))
    if engine.zero_gpu:
        args = (data, len(items), checkpoint, few_shot_k, max_new_tokens, batch_size, retrieval_k)
        return _on_zero_gpu(run_dir, ev.cfg.model, bool(shots) + bool(retrieved), args, say)

    say(0.05, f"Loss on {len(items)} held-out rows")
    losses = ev.losses(items, shots, retrieved)
    rows, settings = [], Settings(temperature=0, max_new_tokens=max_new_tokens)
    asked = {"base": [p for _, (p, _) in items], "tuned": [p for _, (p, _) in items]}
    if shots:
        asked["few_shot"] = [with_shots(p, shots) for p in asked["base"]]
    if retrieved:
        asked["retrieval"] = [
            with_shots(p, r) for p, r in zip(asked["base"], retrieved, strict=True)
        ]
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        say(
            0.2 + 0.7 * start / len(items),
            f"Generating rows {start + 1}-{start + len(chunk)} of {len(items)}",
        )
        part = {side: c[start : start + batch_size] for side, c in asked.items()}
        for j, got in enumerate(ev.replies(part, settings)):
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
    timed_rows = min(timed_rows, len(items))
    say(0.9, f"Timing each side on {timed_rows} requests sent alone")
    timed = ev.latencies({s: c[:timed_rows] for s, c in asked.items()}, settings)
    report = {"rows": len(rows)} | summarise(rows, losses)
    for side in asked:
        report[side]["latency_s"] = timed.get(side)
    vs_base = compare(rows, "tuned", "base", metric)
    vs_few = compare(rows, "tuned", "few_shot", metric) if shots else None
    vs_retrieved = compare(rows, "tuned", "retrieval", metric) if retrieved else None
    saved = (
        report["few_shot"]["prompt_tokens"] - report["tuned"]["prompt_tokens"] if shots else None
    )
    for r in rows:
        duel = outcome(r["scores"]["tuned"][metric], r["scores"]["base"][metric])
        r["winner"] = {"win": "tuned", "loss": "base", "tie": "tie"}[duel]
    said = verdict(vs_base, vs_few, few_shot_k, saved, metric, vs_retrieved, retrieval_k)
    advice = decision.recommend(rows, report, metric)
    report |= {
        "verdict": f"{said.headline} {said.details}{note}",
        "headline": said.headline,
        "outcome": said.outcome,
        "metric": metric,
        "metric_reason": metric_reason,
        "tuned_vs_base": vs_base,
        "tuned_vs_few_shot": vs_few,
        "tuned_vs_retrieval": vs_retrieved,
        "prompt_tokens_saved_per_request": saved,
        "references_json": json_refs,
        "few_shot_k": few_shot_k if shots else 0,
        "retrieval_k": retrieval_k if retrieved else 0,
        "latency_rows": timed_rows,
        "recommendation": {"choice": advice.choice, "reason": advice.reason},
        "checkpoint": checkpoint,
        "model": ev.cfg.model,
        "data": source,
        "max_new_tokens": max_new_tokens,
        "seconds": round(time.monotonic() - started, 1),
    }
    save_report(run_dir, report, rows)
    decision.write(run_dir, report, ev.cfg, len(train))
    say(1.0, "Done")
    return report


def _on_zero_gpu(run_dir: Path, model: str, prompted: int, args: tuple, say) -> dict:
    """The evaluation in one GPU call, with as many of the rows as fit in it; the requests
    timed alone only when a batch of rows still fits beside them (rows come first)."""
    data, rows, checkpoint, few_shot_k, new_tokens, batch_size, retrieval_k = args
    timed = LATENCY_ROWS
    fit = zerogpu.eval_rows_that_fit(
        model, new_tokens, batch_size, prompted, (2 + prompted) * timed
    )
    if not fit:
        timed, fit = 0, zerogpu.eval_rows_that_fit(model, new_tokens, batch_size, prompted)
    longest = f"one ZeroGPU call of at most {zerogpu.MAX_SECONDS} s"
    if not fit:
        raise ValueError(
            f"Evaluating this model does not fit in {longest}. Lower the reply length, or run "
            "`python -m training eval RUN_DIR` on a machine with a GPU."
        )
    note = f" Evaluated {fit} of {rows} rows: what fits in {longest}." if fit < rows else ""
    if not timed:
        note += " Seconds per request were not measured: no time left for them in the call."
    say(0.05, "Waiting for a GPU (ZeroGPU)")
    limit = min(rows, fit)
    report = _evaluate_on_gpu(
        str(run_dir),
        data,
        limit,
        checkpoint,
        few_shot_k,
        new_tokens,
        batch_size,
        note,
        retrieval_k,
        timed,
    )
    say(1.0, "Done")
    return report


def _evaluate_in_worker(
    run_dir,
    data,
    limit,
    checkpoint,
    few_shot_k,
    new_tokens,
    batch_size,
    note,
    retrieval_k=3,
    timed_rows=LATENCY_ROWS,
):
    """Inside the GPU call: the evaluation with the worker process's engine."""
    engine = device_engine()
    args = (data, limit, checkpoint, few_shot_k, new_tokens, batch_size)
    return evaluate_run(
        run_dir, *args, engine=engine, note=note, retrieval_k=retrieval_k, timed_rows=timed_rows
    )


def _eval_seconds(
    run_dir,
    data,
    limit,
    checkpoint,
    few_shot_k,
    new_tokens,
    batch_size,
    note,
    retrieval_k=3,
    timed_rows=LATENCY_ROWS,
):
    model = run_config(Path(run_dir)).model
    prompted = (few_shot_k > 0) + (retrieval_k > 0)
    alone = (2 + prompted) * timed_rows
    return zerogpu.eval_seconds(model, limit, new_tokens, batch_size, prompted, alone)


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
    p.add_argument(
        "--retrieval",
        type=int,
        default=3,
        help="most similar training examples in the retrieval baseline (0 = off)",
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
            retrieval_k=args.retrieval,
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
    advice = report["recommendation"]
    print(f"\nRecommendation: {advice['choice']}. {advice['reason']}")
    print(f"decision report: {args.run_dir / decision.DECISION}")
    return 0
