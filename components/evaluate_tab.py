"""Evaluate tab: the before/after report of a run (training/evaluation/evaluate.py) and its per-row table.

The evaluation runs in the app's chat engine (the same single loaded model the Playground
uses, queued behind it), writes RUN_DIR/eval/, and a saved report shows again whenever
the run is picked. Every text from the data or a model is escaped before display.
"""

import logging
from functools import partial

import gradio as gr

from components.format import esc, message_html
from components.run_picker import build_run_row, checkpoint_update
from training.chat.engine import ChatEngine
from training.evaluation import evaluate
from training.evaluation.metrics import METRICS
from training.jobs import runs
from training.models.access import check_remote_code
from training.settings import Settings

log = logging.getLogger(__name__)

SIDE_LABELS = {"base": "Base", "tuned": "Tuned", "few_shot": "Base + few-shot"}
TEXT_CHARS = 600


def report_html(report: dict | None) -> str:
    if not report:
        return message_html("No evaluation yet for this run: press Evaluate.", "info")
    duel = report.get("tuned_vs_base") or {}
    level = "ok" if duel.get("wins", 0) > duel.get("losses", 0) else "warning"
    sides = [s for s in SIDE_LABELS if report.get(s)]
    head = "".join(f"<th>{esc(SIDE_LABELS[s])}</th>" for s in sides)
    body = ""
    for key, (label, fmt) in METRICS.items():
        values = [report[s].get(key) for s in sides]
        if all(v is None for v in values):
            continue
        cells = "".join(f"<td>{fmt.format(v) if v is not None else '–'}</td>" for v in values)
        body += f"<tr><th>{esc(label)}</th>{cells}</tr>"
    details = (
        f"{report['rows']} rows from {report.get('data', '?')}, checkpoint {report.get('checkpoint', '?')}, "
        f"greedy decoding up to {report.get('max_new_tokens', '?')} new tokens, "
        f"{report.get('few_shot_k', 0)} few-shot examples, {report.get('seconds', '?')} s. "
        "A row is won by the higher ROUGE-L F1; equal scores are ties."
    )
    return (
        message_html(report["verdict"], level)
        + f'<table class="ts-table ts-eval"><thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table>'
        + f'<p class="ts-caption">{esc(details)}</p>'
    )


def _text_cell(text: str, score: float | None = None) -> str:
    cut = text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"
    badge = f'<div class="ts-score">ROUGE-L {score:.2f}</div>' if score is not None else ""
    return (
        f'<td><div class="ts-cell-text" style="white-space: pre-wrap">{esc(cut)}</div>{badge}</td>'
    )


def rows_html(rows: list[dict]) -> str:
    if not rows:
        return ""
    sides = [s for s in SIDE_LABELS if s in rows[0]["outputs"]]
    head = "".join(
        f"<th>{esc(h)}</th>"
        for h in ["#", "Prompt", "Reference", *(SIDE_LABELS[s] for s in sides), "Winner"]
    )
    body = []
    for r in rows:
        cells = _text_cell(r["prompt"]) + _text_cell(r["reference"])
        cells += "".join(_text_cell(r["outputs"][s], r["scores"][s]["rouge_l"]) for s in sides)
        body.append(
            f'<tr><td class="ts-num">{r["index"] + 1}</td>{cells}<td>{esc(r.get("winner", ""))}</td></tr>'
        )
    return (
        f'<div class="ts-table-wrap"><table class="ts-table ts-eval-rows"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def show_saved(run: str, owner: str = ""):
    pick, path = checkpoint_update(run, owner)
    if path is None:
        return pick, message_html("Pick a run to evaluate.", "info"), ""
    report, rows = evaluate.read_report(path)
    return pick, report_html(report), rows_html(rows)


def run_evaluation(
    engine: ChatEngine,
    run,
    checkpoint,
    limit,
    k,
    data_file,
    owner="",
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
            engine=engine,
            progress=lambda fraction, message: progress(fraction, desc=message),
        )
    except Exception as exc:  # a plain message in the page, never a traceback
        log.exception("evaluation failed")
        return message_html(f"Evaluation failed: {exc}", "error"), gr.skip()
    return report_html(report), rows_html(evaluate.read_report(path)[1])


def build_evaluate_tab(engine: ChatEngine, owner=None, settings: Settings | None = None) -> None:
    """engine: the app's chat engine (shared with the Playground); owner: the visitor's id
    (components/visitor.py's Visitor.owner); without one only CLI runs show. settings: whether a run's
    model may run its own code (training/models/access.py)."""
    owner = owner if owner is not None else gr.State("")
    with gr.Tab("Evaluate") as tab:
        gr.Markdown(
            "Did fine-tuning help, and was it worth it? Base, tuned and base + few-shot answer "
            "the rows the run held out (or your own file); the report compares them with the "
            "references."
        )
        run, checkpoint = build_run_row(tab, owner)
        with gr.Row():
            limit = gr.Slider(1, 500, 50, step=1, label="Rows (at most)")
            k = gr.Slider(0, 8, 3, step=1, label="Few-shot examples (0 = no few-shot baseline)")
            data_file = gr.File(
                label="Held-out file (optional; default: the run's validation split)",
                file_types=[".jsonl", ".json", ".csv", ".tsv", ".parquet"],
                type="filepath",
            )
        start = gr.Button("Evaluate", variant="primary")
        report = gr.HTML(message_html("Pick a run to evaluate.", "info"))
        table = gr.HTML()
    run.change(show_saved, [run, owner], [checkpoint, report, table], api_visibility="private")
    start.click(
        partial(run_evaluation, engine, settings=settings),
        [run, checkpoint, limit, k, data_file, owner],
        [report, table],
        api_name="evaluate",
        concurrency_id="chat-engine",
        concurrency_limit=1,
    )
