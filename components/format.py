"""Pure formatters: typed results from `training` in, HTML strings out.

No gradio here, so every function is testable on its own. All text that comes from a
dataset, a model or a file name passes through `esc()` before it reaches the page: the
page shows a `<script>` in a row as text, it never runs it.
"""

import html
import json
import re
from collections.abc import Iterable

from training.data.codes import group_text

CELL_CHARS = 160  # longest cell text in the preview table; the full row is in the chat view
ROWS_SHOWN = 30  # row numbers listed per problem before "and N more"


def esc(value) -> str:
    """Text for HTML, quotes included (safe inside attributes too)."""
    return html.escape(value if isinstance(value, str) else str(value), quote=True)


def cell_text(value) -> str:
    """A compact one-line rendering of any JSON value, cut to CELL_CHARS."""
    if isinstance(value, str):
        text = value
    elif value is None:
        text = ""
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def message_html(text: str, level: str = "info") -> str:
    """A plain status or error panel; level: info, ok, warning, error."""
    return f'<div class="ts-panel ts-{esc(level)}">{esc(text)}</div>'


def table_html(columns: list[str], rows: list[dict], row_numbers: list[int]) -> str:
    """A table of records: a '#' column with each record's 1-based number, then one per column."""
    head = "".join(f"<th>{esc(c)}</th>" for c in ["#", *columns])
    body = "".join(
        f'<tr><td class="ts-num">{number}</td>'
        + "".join(f"<td>{esc(cell_text(row.get(c)))}</td>" for c in columns)
        + "</tr>"
        for number, row in zip(row_numbers, rows, strict=True)
    )
    if not body:
        return message_html("The file holds no rows to preview.", "warning")
    return (
        '<div class="ts-table-wrap"><table class="ts-table">'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def preview_html(preview) -> str:
    """The first rows of a file (training.data.Preview), with each row's problems."""
    top = message_html(preview.error, "error") if preview.error else ""
    if not preview.rows:
        return top or message_html("The file holds no rows to preview.", "warning")
    rows, columns = preview.rows, list(preview.columns)
    if any(preview.problems):
        rows = [
            {**r, "⚠ problems": "; ".join(p)} for r, p in zip(rows, preview.problems, strict=True)
        ]
        columns.append("⚠ problems")
    caption = f"The first {len(rows)} rows of the file, as read."
    return f'{top}<div class="ts-caption">{esc(caption)}</div>' + table_html(
        columns, rows, preview.row_numbers
    )


def detection_html(preview) -> str:
    """One line: which format was detected (or chosen) and which columns are used."""
    d = preview.detection
    if d is None or preview.format is None:
        return message_html(
            "Could not tell what kind of data this is: choose the format and map the columns "
            "under “Format and columns”.",
            "warning",
        )
    text = d.reason
    if d.ambiguous:
        text += " Not what you meant? Choose the format under “Format and columns”."
    return message_html(text, "warning" if d.ambiguous else "info")


def problem_row_html(row: int, record, problems: list[str]) -> str:
    """A row the trainer cannot use: what is wrong, and the raw record."""
    items = "".join(f"<li>{esc(p)}</li>" for p in problems if p)
    raw = json.dumps(record, ensure_ascii=False, indent=2, default=str)
    return (
        message_html(f"Row {row} cannot be used for training:", "error")
        + f'<ul class="ts-problems">{items}</ul><pre class="ts-rendered">{esc(raw)}</pre>'
    )


# --- validation report -------------------------------------------------------------


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def verdict(report) -> tuple[bool, str]:
    """(ready, sentence): the one line a user reads first."""
    if report.ok:
        fmt = f" in {report.format} format" if report.format else ""
        warnings = report.warning_count
        extra = f", {plural(warnings, 'warning')} to look at" if warnings else ""
        return True, f"Ready to train: {plural(report.rows, 'example')}{fmt}{extra}."
    return False, f"Fix {plural(report.error_count, 'error')} first, then check again."


def verdict_html(report) -> str:
    ready, text = verdict(report)
    return message_html(text, "ok" if ready else "error")


def where(f) -> str:
    """Where a finding points: "row 7", "validation file row 3", "the whole file"."""
    name = "validation file" if f.file else "file"
    return f"the whole {name}" if f.row is None else f"{name} row {f.row}".removeprefix("file ")


def _rows_text(findings: list, total: int) -> str:
    numbers = sorted({(bool(f.file), f.row) for f in findings if f.row is not None})
    if not numbers:
        return "the whole file"
    shown = ", ".join(("validation " if v else "") + str(n) for v, n in numbers[:ROWS_SHOWN])
    more = total - min(len(numbers), ROWS_SHOWN)
    word = "row" if len(numbers) == 1 and more <= 0 else "rows"
    return f"{word} {shown}" + (f" and {more:,} more" if more > 0 else "")


def group_findings(findings) -> list[dict]:
    """Findings grouped by code, in order of first appearance: the report's sections."""
    groups: dict[str, dict] = {}
    for f in findings:
        g = groups.setdefault(f.code, {"code": f.code, "level": f.level, "items": []})
        g["items"].append(f)
    return list(groups.values())


def report_html(report) -> str:
    """The validation report: errors before warnings, one section per problem code, each
    with its count, row numbers, the message per row and the fix hint."""
    if not report.errors and not report.warnings:
        return message_html("No problems found.", "ok")
    parts = []
    for title, findings, level in (
        ("Errors (these block training)", report.errors, "error"),
        ("Warnings (training can go ahead)", report.warnings, "warning"),
    ):
        if not findings:
            continue
        parts.append(f'<h4 class="ts-h">{esc(title)}</h4>')
        for g in group_findings(findings):
            items = g["items"]
            count = max(len(items), report.counts.get(g["code"], 0))
            # one row's facts are never stated for all: a generic summary when they differ
            summary, hint = group_text(g["code"], items, count)
            rows = _rows_text(items, count)
            details = "".join(
                f"<li><b>{esc(where(f))}</b>: {esc(f.message)}</li>" for f in items[:ROWS_SHOWN]
            )
            # the code is for scripts and tests (an attribute), never shown as text
            parts.append(
                f'<details class="ts-finding ts-{level}" data-code="{esc(g["code"])}">'
                f"<summary><span class='ts-count'>{count:,}×</span> {esc(summary)}"
                f" <span class='ts-rows'>({esc(rows)})</span></summary>"
                f"<p class='ts-hint'>How to fix: {esc(hint)}</p>"
                f"<ul>{details}</ul></details>"
            )
    return "".join(parts)


# --- conversation view --------------------------------------------------------------


def rendered_html(text: str, specials: Iterable[str] = (), title: str = "") -> str:
    """The training text exactly as the model sees it, special tokens highlighted."""
    specials = sorted({s for s in specials if s}, key=len, reverse=True)
    pieces = re.split("(" + "|".join(map(re.escape, specials)) + ")", text) if specials else [text]
    body = "".join(
        f'<span class="ts-special">{esc(p)}</span>' if p in specials else esc(p) for p in pieces
    )
    caption = f'<div class="ts-caption">{esc(title)}</div>' if title else ""
    return f'{caption}<pre class="ts-rendered">{body}</pre>'


# --- styles for the classes above (passed to launch(css=...)) ------------------------

CSS = """
.ts-chat-base .md, .ts-chat-tuned .md, .ts-chat-few_shot .md,
.ts-chat-retrieval .md { white-space: pre-wrap; }
/* Gradio floats a chat's label and buttons over its top edge, so scrolled messages ran under
   them: the scrolling area starts below them instead. */
.ts-chat .wrapper > .bubble-wrap { margin-top: 40px; height: calc(100% - 40px);
  padding-top: 0; }
.ts-panel { padding: 10px 14px; border-radius: 8px; margin: 4px 0 10px; font-weight: 600;
  border: 1px solid var(--border-color-primary); }
.ts-ok { background: #e8f7ee; color: #14532d; border-color: #86efac; }
.ts-error { background: #fdecec; color: #7f1d1d; border-color: #fca5a5; }
.ts-warning { background: #fff7e6; color: #78350f; border-color: #fcd34d; }
.ts-info { background: var(--background-fill-secondary); font-weight: 400; }
.ts-h { margin: 12px 0 4px; }
.ts-finding { border-left: 4px solid #ef4444; padding: 6px 10px; margin: 6px 0;
  background: var(--background-fill-secondary); border-radius: 4px; }
.ts-finding.ts-warning { border-left-color: #f59e0b; }
.ts-finding summary { cursor: pointer; }
.ts-finding ul { margin: 4px 0 4px 18px; font-size: 0.92em; max-height: 220px; overflow: auto; }
.ts-count { font-weight: 700; }
.ts-rows, .ts-code { color: var(--body-text-color-subdued); font-size: 0.9em; }
.ts-hint { margin: 4px 0; }
.ts-table-wrap { max-height: 420px; overflow: auto; border: 1px solid var(--border-color-primary);
  border-radius: 6px; }
.ts-table { border-collapse: collapse; width: 100%; font-size: 0.9em; }
.ts-table th, .ts-table td { border-bottom: 1px solid var(--border-color-primary);
  padding: 4px 8px; text-align: left; vertical-align: top; white-space: pre-wrap;
  word-break: break-word; }
.ts-table thead th { position: sticky; top: 0; background: var(--background-fill-secondary); }
.ts-num { color: var(--body-text-color-subdued); text-align: right; }
.ts-stats { margin-bottom: 10px; }
.ts-stats td, .ts-stats thead th { font-variant-numeric: tabular-nums; white-space: nowrap;
  word-break: normal; text-align: right; }
.ts-hist { width: 100%; max-width: 720px; height: auto; }
.ts-bar { fill: #6366f1; }
.ts-bar-over { fill: #ef4444; }
.ts-axis { stroke: var(--body-text-color-subdued); }
.ts-tick, .ts-max-label { font-size: 12px; fill: var(--body-text-color); }
.ts-max { stroke: #dc2626; stroke-width: 2; stroke-dasharray: 5 3; }
.ts-max-label { fill: #dc2626; }
.ts-caption { font-size: 0.9em; color: var(--body-text-color-subdued); margin-bottom: 4px; }
.ts-rendered { white-space: pre-wrap; word-break: break-word; max-height: 420px; overflow: auto;
  padding: 10px; border-radius: 6px; background: var(--background-fill-secondary);
  border: 1px solid var(--border-color-primary); font-size: 0.9em; }
.ts-special { color: #7c3aed; font-weight: 600; }
.ts-eval-reason { font-weight: 400; margin-top: 4px; }
.ts-eval-why { font-size: 0.92em; margin: 0 0 8px; }
.ts-eval-sample { border: 1px solid var(--border-color-primary); border-radius: 8px;
  padding: 8px 12px; margin: 8px 0; }
.ts-eval-head { font-weight: 600; margin-bottom: 6px; }
.ts-eval-grid { display: grid; gap: 8px 12px; margin-top: 6px;
  grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); }
.ts-eval-answer { background: var(--background-fill-secondary); border-radius: 6px; padding: 6px 8px; }
.ts-eval-label { font-size: 0.85em; font-weight: 600; color: var(--body-text-color-subdued); }
.ts-eval-text { white-space: pre-wrap; word-break: normal; overflow-wrap: break-word; }
.ts-eval-explain { font-weight: 400; font-size: 0.88em; color: var(--body-text-color-subdued); }
.ts-table.ts-eval th, .ts-table.ts-eval td { word-break: normal; overflow-wrap: break-word;
  white-space: normal; }
.ts-table.ts-eval td { white-space: nowrap; text-align: right; font-variant-numeric: tabular-nums; }
.ts-table.ts-eval thead th { text-align: right; }
.ts-table.ts-eval thead th:first-child { text-align: left; width: 55%; }
.ts-table.ts-eval-rows { table-layout: fixed; min-width: 960px; }
.ts-table.ts-eval-rows th, .ts-table.ts-eval-rows td { word-break: normal;
  overflow-wrap: break-word; }
.ts-eval-rows col.ts-eval-num { width: 3em; }
.ts-eval-rows col.ts-eval-win { width: 7em; }
.ts-chart { width: 100%; max-width: 480px; height: auto; }
.ts-point { fill: #6366f1; }
.ts-point-pick { fill: #16a34a; }
.ts-point-label { font-size: 12px; fill: var(--body-text-color); }
"""
