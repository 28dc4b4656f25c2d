"""Should I fine-tune at all? The evaluation's recommendation, and RUN_DIR/decision.md.

The sides, cheapest first:
  base        the base model as it is: nothing to build, the shortest prompt
  few_shot,   the base model with k training conversations in every prompt (random ones,
  retrieval   or the k most like the question): no training, but every request pays for the
              examples; between them, fewer prompt tokens per request first (equal: few-shot)
  fine_tune   the tuned model: a short prompt, but a training run to pay for and to redo
              whenever the data changes
The rule: recommend the cheapest side that no dearer side beats meaningfully. Meaningfully
is the verdict's rule (metrics.RULE): on the metric that decides, the dearer side wins more
held-out rows than it loses and a sign test on the rows that differ gives p < 0.05. A
dearer side that does only as well, or better by a margin chance could give, loses to the
cheaper one: ties go to the cheaper side. Nothing is dearer than fine-tuning, so some side
is always recommended; a side the evaluation did not run (k = 0) is left out.

decision.md holds the recommendation, each side's quality, prompt tokens and seconds per
request, and a checklist filled in from the run directory (use case, alternatives tried,
data size, training time and compute, quality gained, tokens saved). Text from the user
(file and model names) is made inert Markdown, since the model card includes the file.
"""

import math
from dataclasses import dataclass
from pathlib import Path

from training.evaluation.metrics import METRICS, SCORED_BY, call, compare
from training.export.model_card import md, read_json
from training.jobs import rundir

DECISION = "decision.md"
CHOICES = {"base": "base", "few_shot": "few_shot", "retrieval": "retrieval", "tuned": "fine_tune"}
NAMES = {
    "base": "the base model alone",
    "few_shot": "few-shot prompting",
    "retrieval": "retrieval",
    "tuned": "the tuned model",
}
LABELS = {
    "base": "Base model alone",
    "few_shot": "Few-shot (random training examples)",
    "retrieval": "Retrieval (the most similar training examples)",
    "tuned": "Fine-tuned",
}
CLOSE_POINTS = 5  # a gap of at most this many points (of 100) reads "matches ... within N"


@dataclass(frozen=True)
class Recommendation:
    choice: str  # "base", "few_shot", "retrieval" or "fine_tune"
    reason: str  # one plain sentence (two at most) grounded in the measurements


def by_cost(report: dict) -> list[str]:
    """The sides the report has, cheapest first (see the module docstring)."""
    prompted = [s for s in ("few_shot", "retrieval") if report.get(s)]
    prompted.sort(key=lambda s: report[s]["prompt_tokens"])  # stable: few-shot first on ties
    return ["base", *prompted, "tuned"]


def quality(value: float, metric: str, rows: int, unit: bool = True) -> str:
    """A side's score in words: "18/20 correct", "85% of JSON fields right", "ROUGE-L 0.62"
    (unit False: the figure alone, for the second of two)."""
    if metric == "exact_match":
        return f"{round(value * rows)}/{rows}" + (" correct" if unit else "")
    if metric == "json_fields":
        return f"{value:.0%}" + (" of JSON fields right" if unit else "")
    return f"ROUGE-L {value:.2f}" if unit else f"{value:.2f}"


def recommend(rows: list[dict], report: dict, metric: str) -> Recommendation:
    """The cheapest side no dearer side beats by the verdict's rule, and why, in words.
    rows: per-row scores ({"scores": {side: {metric: value}}}); report: per-side means with
    "prompt_tokens" ({side: {metric, "prompt_tokens"}}, None for a side not run)."""
    order = by_cost(report)
    beaten = {
        side: [d for d in order[i + 1 :] if call(compare(rows, d, side, metric)) == "better"]
        for i, side in enumerate(order)
    }
    choice = next(s for s in order if not beaten[s])
    n = len(rows)
    score = {s: report[s][metric] for s in order}
    said = {s: quality(score[s], metric, n) for s in order}
    tokens = {s: report[s]["prompt_tokens"] for s in order}
    cheaper = order[: order.index(choice)]
    if choice == "tuned":
        rival = max(cheaper, key=lambda s: score[s])
        saved = tokens[rival] - tokens["tuned"]
        against = quality(score[rival], metric, n, unit=False)
        reason = f"Fine-tuning wins: {said['tuned']} against {against} for {NAMES[rival]}"
        reason += f", and saves {saved:,.0f} prompt tokens per request." if saved >= 1 else "."
    elif choice == "base":
        best = max(order[1:], key=lambda s: score[s])
        reason = (
            f"The base model alone does as well as anything tried: {said['base']}, against "
            f"{quality(score[best], metric, n, unit=False)} for {NAMES[best]}, and no other side was meaningfully better on "
            f"{n} rows, so none is worth its cost."
        )
    else:
        name = NAMES[choice].capitalize()
        gap = round((score["tuned"] - score[choice]) * 100, 6)
        duel = compare(rows, "tuned", choice, metric)
        if gap <= 0:
            reason = f"{name} does as well as the tuned model or better"
        elif gap <= CLOSE_POINTS:
            reason = f"{name} matches the tuned model within {math.ceil(gap)} points"
        else:
            reason = (
                f"The tuned model scores higher than {NAMES[choice]}, but by a margin chance "
                f"alone could give on {n} rows (sign test p = {duel['p_value']:.2g})"
            )
        reason += (
            f" ({said[choice]} against {quality(score['tuned'], metric, n, unit=False)}): you "
            "may not need to fine-tune. It "
            f"costs {tokens[choice] - tokens['tuned']:,.0f} more prompt tokens per request "
            "than the tuned model."
        )
    return Recommendation(CHOICES[choice], reason)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def training_used(run_dir: Path) -> str | None:
    """How long the run trained and on what, from its status, metrics and progress files;
    None when it left no trace of either."""
    status = rundir.read_status(run_dir)
    metrics = status.get("metrics") or read_json(run_dir / rundir.METRICS)
    elapsed = [p["elapsed"] for p in rundir.read_progress(run_dir) if "elapsed" in p]
    seconds = metrics.get("train_runtime_s") or (elapsed[-1] if elapsed else None)
    if seconds is None:
        return None
    parts = [f"{_duration(seconds)} of training"]
    device = metrics.get("device") or status.get("device")
    if device:
        parts.append(f"on {md(device)}")
    if metrics.get("steps"):
        parts.append(f"{metrics['steps']:,} optimizer steps")
    if metrics.get("trained_tokens_per_epoch") and metrics.get("epoch"):
        parts.append(
            f"about {metrics['trained_tokens_per_epoch'] * metrics['epoch']:,.0f} trained tokens"
        )
    return ", ".join(parts)


def _box(value: str | None, missing: str) -> str:
    return f"- [x] {value}" if value else f"- [ ] {missing}"


def render(run_dir: Path, report: dict, cfg, train_rows: int) -> str:
    """decision.md: the recommendation, the four sides' figures, the filled-in checklist.
    cfg: the run's RunConfig; train_rows: the training conversations it learned from."""
    metric, n = report["metric"], report["rows"]
    used = training_used(run_dir)
    order = [s for s in ("base", "few_shot", "retrieval", "tuned") if report.get(s)]
    label = METRICS[metric].label
    lines = [
        "# Should I fine-tune at all?",
        "",
        f"**Recommendation: {report['recommendation']['choice'].replace('_', '-')}.** "
        + report["recommendation"]["reason"],
        "",
        f"| Side | {label} | Prompt tokens per request | Seconds per request |",
        "| --- | --- | --- | --- |",
    ]
    for s in order:
        latency = report[s].get("latency_s")
        lines.append(
            f"| {LABELS[s]} | {quality(report[s][metric], metric, n)} | "
            f"{report[s]['prompt_tokens']:,.0f} | "
            + (f"{latency:.2f}" if latency is not None else "–")
            + " |"
        )
    alternatives = ["the base model alone"]
    if report.get("few_shot"):
        alternatives.append(f"the base model with {report['few_shot_k']} random training examples")
    if report.get("retrieval"):
        alternatives.append(
            f"the base model with the {report['retrieval_k']} most similar training examples "
            "(BM25 retrieval)"
        )
    tuned, base = report["tuned"][metric], report["base"][metric]
    cheaper = [s for s in order if s != "tuned"]
    best = max(cheaper, key=lambda s: report[s][metric])
    gained = (
        f"the tuned model {quality(tuned, metric, n)} against {quality(base, metric, n)} for "
        f"the base model ({(tuned - base) * 100:+.0f} points)"
    )
    if best != "base":
        gained += (
            f" and {quality(report[best][metric], metric, n)} for {NAMES[best]} "
            f"({(tuned - report[best][metric]) * 100:+.0f} points)"
        )
    saved = [
        f"{report[s]['prompt_tokens'] - report['tuned']['prompt_tokens']:,.0f} against {NAMES[s]}"
        for s in ("few_shot", "retrieval")
        if report.get(s)
    ]
    lines += [
        "",
        "## Checklist",
        "",
        _box(
            f"Use case: {md(Path(cfg.data).name)} on {md(Path(cfg.model).name)}, scored by "
            f"{SCORED_BY[metric]}",
            "Use case: unknown",
        ),
        _box(f"Alternatives tried: {'; '.join(alternatives)}", "Alternatives tried"),
        _box(
            f"Data size: {train_rows:,} training conversations; {n} held-out rows evaluated "
            f"({md(Path(str(report.get('data', '?'))).name)})",
            "Data size",
        ),
        _box(
            used and f"Training time and compute: {used}",
            "Training time and compute: the run left no status or progress to read",
        ),
        _box(f"Quality gained: {gained}, on {n} held-out rows", "Quality gained"),
        _box(
            saved and f"Tokens saved per request by the tuned model: {', '.join(saved)}",
            "Tokens saved: no prompted baseline was run",
        ),
        "",
        f"Rule: the cheapest side no dearer side beats by a sign test (p < 0.05) on "
        f"{SCORED_BY[metric]}; base < few-shot / retrieval (by prompt tokens) < fine-tuning "
        "(by training cost). Every figure is in eval/report.json.",
    ]
    return "\n".join(lines) + "\n"


def write(run_dir: Path, report: dict, cfg, train_rows: int) -> Path:
    """RUN_DIR/decision.md, replaced atomically."""
    path = Path(run_dir) / DECISION
    tmp = path.with_name(f".{DECISION}.tmp")
    tmp.write_text(render(Path(run_dir), report, cfg, train_rows), encoding="utf-8")
    tmp.replace(path)
    return path
