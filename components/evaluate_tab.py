"""Evaluate tab: was fine-tuning worth it, and should you have fine-tuned at all? The report of
a run (training/evaluation/evaluate.py) in reading order: the recommendation (which of base,
few-shot, retrieval and the tuned model to use) with its chart (components/decision_format.py),
the verdict (green only for a clear improvement), which metric decided and the rule, sample
answers, the figures with a plain line for each, then every row.

The evaluation runs in the app's chat engine (the same single loaded model the Playground
uses, queued behind it), writes RUN_DIR/eval/, and a saved report shows again whenever
the run is picked. Every text from the data or a model is escaped before display.
"""

import logging
from functools import partial

import gradio as gr

from components.decision_format import recommendation_html
from components.format import esc, message_html
from components.run_picker import build_run_row, checkpoint_update
from training.chat.engine import ChatEngine
from training.evaluation import evaluate
from training.evaluation.metrics import METRICS, RULE
from training.jobs import runs
from training.models.access import check_remote_code
from training.settings import Settings

log = logging.getLogger(__name__)

SIDE_LABELS = {
    "base": "Base",
    "tuned": "Tuned",
    "few_shot": "Base + few-shot",
    "retrieval": "Base + retrieved",
}
WINNER = {"tuned": "Tuned scored higher", "base": "Base scored higher", "tie": "Same score"}
LEVEL = {"improved": "ok", "regressed": "error"}  # any other outcome: warning, never green
SAMPLES = 3  # sample answers shown before the figures
TEXT_CHARS = 600


def _text(text: str) -> str:
    cut = text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"
    return f'<div class="ts-eval-text">{esc(cut)}</div>'


def _score(metric: str, value) -> str:
    if value is None:
        return ""
    if metric == "exact_match":
        return "right" if value else "wrong"
    return f"{METRICS[metric].label} {METRICS[metric].fmt.format(value)}"


def pick_samples(rows: list[dict], n: int = SAMPLES) -> list[dict]:
    """A row tuned won, one base won and one tie where there are such (not only the wins),
    then the next rows; in row order."""
    picked = []
    for kind in WINNER:
        picked += [r for r in rows if r.get("winner") == kind][:1]
    picked += [r for r in rows if all(r is not p for p in picked)]
    return sorted(picked[:n], key=lambda r: r["index"])


def sample_html(row: dict, metric: str) -> str:
    """One held-out row as a card: prompt and reference, then each side's answer and score."""
    sides = [s for s in SIDE_LABELS if s in row["outputs"]]
    answers = "".join(
        f'<div class="ts-eval-answer ts-eval-{s}"><div class="ts-eval-label">'
        f"{esc(SIDE_LABELS[s])} · {esc(_score(metric, row['scores'][s].get(metric)))}</div>"
        f"{_text(row['outputs'][s])}</div>"
        for s in sides
    )
    return (
        f'<div class="ts-eval-sample"><div class="ts-eval-head">Row {row["index"] + 1}: '
        f"{esc(WINNER.get(row.get('winner'), ''))}</div>"
        f'<div class="ts-eval-grid"><div><div class="ts-eval-label">Prompt</div>'
        f'{_text(row["prompt"])}</div><div><div class="ts-eval-label">Reference answer</div>'
        f'{_text(row["reference"])}</div></div><div class="ts-eval-grid">{answers}</div></div>'
    )


def figures_html(report: dict, metric: str) -> str:
    """The per-side means, the deciding metric first, each with its one-line explanation."""
    sides = [s for s in SIDE_LABELS if report.get(s)]
    head = "".join(f"<th>{esc(SIDE_LABELS[s])}</th>" for s in sides)
    body = ""
    for key in [metric, *(k for k in METRICS if k != metric)]:
        values = [report[s].get(key) for s in sides]
        if all(v is None for v in values):
            continue
        m = METRICS[key]
        cells = "".join(f"<td>{m.fmt.format(v) if v is not None else '–'}</td>" for v in values)
        label = m.label + (" (decides the verdict)" if key == metric else "")
        body += (
            f'<tr><th>{esc(label)}<div class="ts-eval-explain">{esc(m.explain)}</div></th>'
            f"{cells}</tr>"
        )
    return (
        f'<table class="ts-table ts-eval"><thead><tr><th>Figure</th>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def report_html(report: dict | None, rows: list[dict] | None = None) -> str:
    """The recommendation and its chart, the verdict (green only for a clear improvement),
    which metric decided and why, the rule, sample answers, then the figures."""
    if not report:
        return message_html("No evaluation yet for this run: press Evaluate.", "info")
    metric = report.get("metric", "rouge_l")  # reports saved before the metric was chosen
    headline = report.get("headline", "")
    rest = report["verdict"].removeprefix(headline).strip()
    level = LEVEL.get(report.get("outcome"), "warning")
    why = report.get(
        "metric_reason",
        "This evaluation was saved by an earlier version that did not test its verdict against "
        "chance: press Evaluate for one that does.",
    )
    samples = pick_samples(rows or [])
    shown = (
        f"{len(samples)} of the {report['rows']} held-out rows (every row is in the table below)"
        if samples
        else "none saved"
    )
    details = (
        f"{report['rows']} rows from {report.get('data', '?')}, checkpoint "
        f"{report.get('checkpoint', '?')}, greedy decoding up to "
        f"{report.get('max_new_tokens', '?')} new tokens, {report.get('few_shot_k', 0)} few-shot "
        f"examples, {report.get('retrieval_k', 0)} retrieved examples, "
        f"{report.get('seconds', '?')} s."
    )
    return (
        recommendation_html(report)
        + f'<div class="ts-panel ts-{level} ts-eval-verdict">{esc(headline)}'
        f'<div class="ts-eval-reason">{esc(rest)}</div></div>'
        f'<p class="ts-eval-why">{esc(why)} {esc(RULE)}</p>'
        f'<h4 class="ts-h">Sample answers</h4><p class="ts-caption">{esc(shown)}</p>'
        + "".join(sample_html(r, metric) for r in samples)
        + '<h4 class="ts-h">The figures</h4>'
        + figures_html(report, metric)
        + f'<p class="ts-caption">{esc(details)}</p>'
    )


def rows_html(rows: list[dict], metric: str = "rouge_l") -> str:
    """Every row: fixed column widths, words wrapped whole (the page scrolls it sideways on a
    phone rather than breaking words into fragments)."""
    if not rows:
        return ""
    sides = [s for s in SIDE_LABELS if s in rows[0]["outputs"]]
    head = "".join(
        f"<th>{esc(h)}</th>"
        for h in ["#", "Prompt", "Reference", *(SIDE_LABELS[s] for s in sides), "Higher score"]
    )
    cols = '<col class="ts-eval-num">' + "<col>" * (2 + len(sides)) + '<col class="ts-eval-win">'
    body = []
    for r in rows:
        cells = f"<td>{_text(r['prompt'])}</td><td>{_text(r['reference'])}</td>"
        for s in sides:
            score = _score(metric, r["scores"][s].get(metric))
            cells += (
                f'<td>{_text(r["outputs"][s])}<div class="ts-eval-label">{esc(score)}</div></td>'
            )
        winner = SIDE_LABELS.get(r.get("winner"), "Same" if r.get("winner") == "tie" else "")
        body.append(
            f'<tr><td class="ts-num">{r["index"] + 1}</td>{cells}<td>{esc(winner)}</td></tr>'
        )
    return (
        '<h4 class="ts-h">Every row</h4><p class="ts-caption">Each held-out row with every '
        "answer and its score; on a narrow screen the table scrolls sideways.</p>"
        '<div class="ts-table-wrap"><table class="ts-table '
        f'ts-eval-rows"><colgroup>{cols}</colgroup><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def views(report: dict | None, rows: list[dict]) -> tuple[str, str]:
    """(the report with its samples, the table of every row)."""
    return report_html(report, rows), rows_html(rows, (report or {}).get("metric", "rouge_l"))


def show_saved(run: str, owner: str = ""):
    pick, path = checkpoint_update(run, owner)
    if path is None:
        return pick, message_html("Pick a run to evaluate.", "info"), ""
    report, rows = evaluate.read_report(path)
    return pick, *views(report, rows)


def run_evaluation(
    engine: ChatEngine,
    run,
    checkpoint,
    limit,
    k,
    data_file,
    owner="",
    retrieval_k=3,
    progress=gr.Progress(),  # noqa: B008
    settings: Settings | None = None,
):
    try:
        path = runs.open(run, checkpoint, owner)
        # The run's base model loads with the run's trust_remote_code: the app's rule first.
        check_remote_code(runs.run_config(path).trust_remote_code, settings or Settings())
        report = evaluate.evaluate_run(
            path,
            data=data_file or None,
            limit=int(limit),
            checkpoint=checkpoint,
            few_shot_k=int(k),
            retrieval_k=int(retrieval_k),
            engine=engine,
            progress=lambda fraction, message: progress(fraction, desc=message),
        )
    except Exception as exc:  # a plain message in the page, never a traceback
        log.exception("evaluation failed")
        return message_html(f"Evaluation failed: {exc}", "error"), gr.skip()
    return views(report, evaluate.read_report(path)[1])


def build_evaluate_tab(engine: ChatEngine, owner=None, settings: Settings | None = None) -> None:
    """engine: the app's chat engine (shared with the Playground); owner: the visitor's id
    (components/visitor.py's Visitor.owner); without one only CLI runs show. settings: whether a run's
    model may run its own code (training/models/access.py)."""
    owner = owner if owner is not None else gr.State("")
    with gr.Tab("Evaluate") as tab:
        gr.Markdown(
            "Did fine-tuning help, and should you have fine-tuned at all? Base, tuned, base + "
            "few-shot and base + retrieved examples (the training rows most like each "
            "question) answer the rows the run held out (or your own file). The report first "
            "recommends the cheapest of them that nothing dearer clearly beats, then shows "
            "sample answers and compares all of them with the references. It says *worth it* "
            "only when the tuned model wins clearly more rows than chance would give."
        )
        run, checkpoint = build_run_row(tab, owner, elem_id="ts-ev")
        with gr.Row():
            limit = gr.Slider(
                1,
                500,
                50,
                step=1,
                label="Rows (at most)",
                info="A verdict needs at least 6 rows where tuned and base differ; more rows, "
                "a surer answer.",
            )
            k = gr.Slider(0, 8, 3, step=1, label="Few-shot examples (0 = no few-shot baseline)")
            retrieval_k = gr.Slider(
                0,
                8,
                3,
                step=1,
                label="Retrieved examples (0 = no retrieval baseline)",
                info="the training rows most like each question, put in its prompt",
            )
            data_file = gr.File(
                label="Held-out file (optional; default: the run's validation split)",
                file_types=[".jsonl", ".json", ".csv", ".tsv", ".parquet"],
                type="filepath",
            )
        start = gr.Button("Evaluate", variant="primary")
        report = gr.HTML(message_html("Pick a run to evaluate.", "info"), elem_id="ts-ev-report")
        table = gr.HTML(elem_id="ts-ev-table")
    run.change(show_saved, [run, owner], [checkpoint, report, table], api_visibility="private")
    start.click(
        partial(run_evaluation, engine, settings=settings),
        [run, checkpoint, limit, k, data_file, owner, retrieval_k],
        [report, table],
        api_visibility="private",  # scripts use the API's /evaluate (components/api.py)
        concurrency_id="chat-engine",
        concurrency_limit=1,
    )
