"""Dataset statistics as HTML: the figures and distributions table, and the token-length
histogram (inline SVG) with the max-length cut-off marked. Pure functions, no gradio."""

from components.format import cell_text, esc, message_html

DIST_LABELS = {
    "messages_per_example": "Messages per example",
    "tokens_per_example": "Tokens per example",
    "assistant_tokens_per_example": "Assistant tokens per example",
}
SCALAR_LABELS = {
    "examples": "Examples",
    "rows_with_errors": "Rows with errors (left out if you skip them)",
    "over_max_length": "Examples over the max length (truncated)",
    "total_training_tokens": "Training tokens per epoch",
    "recommended_epochs": "Recommended epochs",
    "max_length": "Max length (tokens)",
}
DIST_KEYS = ("min", "mean", "median", "p10", "p90", "max")
SOURCES = {"split": "held out from the data", "file": "from the validation file"}  # for people


def _num(v) -> str:
    if isinstance(v, float):
        return f"{v:,.1f}" if v != int(v) else f"{int(v):,}"
    return f"{v:,}" if isinstance(v, int) else esc(cell_text(v))


def stats_html(stats: dict) -> str:
    """Two small tables: the scalar figures, then the distributions."""
    if not stats:
        return message_html("No statistics yet.", "info")
    scalars = [
        (label, stats[k])
        for k, label in SCALAR_LABELS.items()
        if k in stats and (stats[k] or k != "rows_with_errors")  # no "0 rows with errors"
    ]
    split = stats.get("split")
    if isinstance(split, dict):
        scalars.append(("Train / validation split", _split_text(split)))
    rows = "".join(
        f"<tr><th>{esc(label)}</th><td>{v if isinstance(v, str) and label.startswith('Train /') else _num(v)}</td></tr>"
        for label, v in scalars
    )
    head = "".join(f"<th>{k}</th>" for k in DIST_KEYS)
    dists = "".join(
        f"<tr><th>{esc(label)}</th>"
        + "".join(f"<td>{_num(stats[key].get(k, ''))}</td>" for k in DIST_KEYS)
        + "</tr>"
        for key, label in DIST_LABELS.items()
        if isinstance(stats.get(key), dict) and stats[key]
    )
    out = f'<table class="ts-table ts-stats"><tbody>{rows}</tbody></table>'
    if dists:
        out += (
            f'<table class="ts-table ts-stats"><thead><tr><th></th>{head}</tr></thead>'
            f"<tbody>{dists}</tbody></table>"
        )
    return out


def _split_text(split: dict) -> str:
    """Escaped already: {"train": 90, "validation": 10, ...} -> "90 / 10 (...)"."""
    train, val = split.get("train"), split.get("validation")
    extra = ", ".join(
        esc(SOURCES.get(v, cell_text(v))) if k == "source" else f"{esc(k)}: {esc(cell_text(v))}"
        for k, v in split.items()
        if k not in ("train", "validation")
    )
    text = f"{_num(train) if train is not None else '?'} / {_num(val) if val is not None else '?'}"
    return text + (f" ({extra})" if extra else "")


# --- token-length histogram ---------------------------------------------------------


def histogram_svg(histogram: dict | None, max_length: int | None) -> str:
    """Bars of tokens per example with the max length as a dashed red line (bins past it
    red). When every example is far shorter than the limit, the axis stays on the data and
    the limit is named at the right edge instead of squashing the bars."""
    edges, counts = (histogram or {}).get("edges") or [], (histogram or {}).get("counts") or []
    if len(edges) != len(counts) + 1 or not counts:
        return message_html("No token lengths to plot yet.", "info")
    w, h, left, bottom, top, right = 480, 190, 40, 28, 24, 12
    lo, hi, peak = min(edges[0], 0), edges[-1], max(counts) or 1
    on_chart = bool(max_length) and max_length <= hi * 1.5
    if on_chart:
        hi = max(hi, max_length * 1.05)

    def x(v: float) -> float:
        return left + (v - lo) / ((hi - lo) or 1) * (w - left - right)

    def y(c: float) -> float:
        return h - bottom - c / peak * (h - bottom - top)

    parts = []
    for i, c in enumerate(counts):
        over = bool(max_length) and edges[i] >= max_length
        x0, x1 = x(edges[i]), x(edges[i + 1])
        parts.append(
            f'<rect x="{x0:.1f}" y="{y(c):.1f}" width="{max(x1 - x0 - 1, 1):.1f}" '
            f'height="{h - bottom - y(c):.1f}" class="{"ts-bar-over" if over else "ts-bar"}">'
            f"<title>{edges[i]:,.0f}–{edges[i + 1]:,.0f} tokens: {c:,} examples</title></rect>"
        )
    base = h - bottom
    parts.append(f'<line x1="{left}" x2="{w - right}" y1="{base}" y2="{base}" class="ts-axis"/>')
    for v, anchor in ((lo, "start"), ((lo + hi) / 2, "middle"), (hi, "end")):
        parts.append(
            f'<text x="{x(v):.1f}" y="{h - 8}" text-anchor="{anchor}" class="ts-tick">{v:,.0f}</text>'
        )
    parts.append(
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" class="ts-tick">{peak:,}</text>'
    )
    parts.append(f'<text x="{left - 6}" y="{base}" text-anchor="end" class="ts-tick">0</text>')
    if on_chart:
        mx = x(max_length)
        parts.append(
            f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{top - 8}" y2="{base}" class="ts-max"/>'
        )
        anchor, tx = ("end", mx - 4) if mx > w / 2 else ("start", mx + 4)
        label = f"max length {int(max_length):,}"
    elif max_length:
        anchor, tx, label = "end", w - right, f"max length {int(max_length):,} (all fit) →"
    if max_length:
        parts.append(
            f'<text x="{tx:.1f}" y="{top - 10}" text-anchor="{anchor}" class="ts-max-label">{label}</text>'
        )
    return (
        f'<svg class="ts-hist" viewBox="0 0 {w} {h}" role="img" '
        f'aria-label="Tokens per example (x: tokens, y: examples)">{"".join(parts)}</svg>'
    )


def provider_html(result) -> str:
    """A provider export (training/data/provider_export.py): the verdict, its figures (token
    counts, epochs, billed tokens) and the findings, grouped as in the validation report."""
    from components.format import report_html
    from training.data.providers import PROVIDERS

    label = PROVIDERS[result.target].label
    if result.ok:
        head = message_html(
            f"Ready for {label} fine-tuning of {result.model}: {result.examples:,} examples.", "ok"
        )
    elif result.out:
        head = message_html(
            f"Written without {result.skipped_count:,} row(s) {label} would refuse: "
            f"{result.examples:,} examples. The rows and why are listed below.",
            "warning",
        )
    else:
        head = message_html(f"No file for {label}: see the errors below.", "error")
    rows = []
    if result.examples:
        t = result.tokens
        estimated = " (estimated)" if result.tokens_estimated else ""
        rows = [
            (
                "Tokens per example" + estimated,
                f"min {t['min']:,} · mean {t['mean']:,} · max "
                f"{t['max']:,} (limit {result.token_limit:,})",
            ),
            ("Tokens in the file" + estimated, f"{t['total']:,}"),
            ("Epochs their default rule picks", f"{result.epochs}"),
            ("Billed training tokens", f"{result.billed_tokens:,}"),
            ("Tokenizer", result.tokenizer),
        ]
    table = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    figures = f"<table class='ts-stats'>{table}</table>" if rows else ""
    return head + figures + report_html(result.report)
