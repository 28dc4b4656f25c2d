"""The Evaluate tab's first panel: which side to use (training/evaluation/decision.py's
recommendation) and an inline SVG of each side's quality against its prompt tokens per
request. Pure functions, no gradio; every text is escaped."""

from components.format import esc
from training.evaluation.metrics import METRICS

CHOICES = {
    "fine_tune": "Fine-tune: use the tuned model",
    "retrieval": "Retrieval: the base model with the most similar training examples",
    "few_shot": "Few-shot: the base model with a few training examples",
    "base": "The base model alone",
}
SIDES = {"base": "Base", "few_shot": "Few-shot", "retrieval": "Retrieval", "tuned": "Tuned"}
PICKED = {"fine_tune": "tuned"}  # the recommendation's word for a side, where it differs


def tradeoff_svg(report: dict) -> str:
    """Quality on the deciding metric (0 to 1, up) against prompt tokens per request (right)
    for each side the report has; the recommended side is drawn larger, in green."""
    metric = report["metric"]
    choice = report["recommendation"]["choice"]
    picked = PICKED.get(choice, choice)
    sides = [s for s in SIDES if report.get(s)]
    w, h, left, bottom, top, right = 480, 220, 44, 40, 14, 96
    most = max(report[s]["prompt_tokens"] for s in sides) * 1.1 or 1

    def x(tokens: float) -> float:
        return left + tokens / most * (w - left - right)

    def y(value: float) -> float:
        return h - bottom - value * (h - bottom - top)

    base = h - bottom
    parts = [
        f'<line x1="{left}" x2="{w - right}" y1="{base}" y2="{base}" class="ts-axis"/>',
        f'<line x1="{left}" x2="{left}" y1="{top}" y2="{base}" class="ts-axis"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" class="ts-tick">1</text>',
        f'<text x="{left - 6}" y="{base}" text-anchor="end" class="ts-tick">0</text>',
        f'<text x="{left}" y="{base + 16}" class="ts-tick">0</text>',
        f'<text x="{x(most):.1f}" y="{base + 16}" text-anchor="end" class="ts-tick">'
        f"{most:,.0f}</text>",
        f'<text x="{(left + w - right) / 2:.1f}" y="{h - 6}" text-anchor="middle" '
        'class="ts-tick">prompt tokens per request</text>',
        f'<text x="12" y="{(top + base) / 2:.1f}" text-anchor="middle" class="ts-tick" '
        f'transform="rotate(-90 12 {(top + base) / 2:.1f})">{esc(METRICS[metric].label)}</text>',
    ]
    placed: list[tuple[float, float]] = []  # label positions so far: near ones move down
    for s in sorted(sides, key=lambda s: -report[s][metric]):
        px, py = x(report[s]["prompt_tokens"]), y(report[s][metric])
        ly = py + 4
        while any(abs(ly - oy) < 13 and abs(px - ox) < 90 for ox, oy in placed):
            ly += 13
        placed.append((px, ly))
        latency = report[s].get("latency_s")
        tip = (
            f"{SIDES[s]}: {METRICS[metric].fmt.format(report[s][metric])} "
            f"{METRICS[metric].label}, {report[s]['prompt_tokens']:,.0f} prompt tokens"
            + (f", {latency:.2f} s per request" if latency is not None else "")
        )
        kind = "ts-point ts-point-pick" if s == picked else "ts-point"
        parts.append(
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="{7 if s == picked else 5}" '
            f'class="{kind}"><title>{esc(tip)}</title></circle>'
            f'<text x="{px + 10:.1f}" y="{ly:.1f}" class="ts-point-label">{esc(SIDES[s])}</text>'
        )
    return (
        f'<svg class="ts-chart" viewBox="0 0 {w} {h}" role="img" aria-label="'
        f'{esc(METRICS[metric].label)} against prompt tokens per request, per side">'
        f"{''.join(parts)}</svg>"
    )


def recommendation_html(report: dict) -> str:
    """The recommendation, its reason, the chart and each side's seconds per request;
    nothing for a report saved before recommendations existed."""
    advice = report.get("recommendation")
    if not advice:
        return ""
    sides = [s for s in SIDES if report.get(s)]
    seconds = [
        f"{SIDES[s]} {report[s]['latency_s']:.2f} s"
        for s in sides
        if report[s].get("latency_s") is not None
    ]
    caption = "Each side's score against the prompt it sends: up is better, left is cheaper." + (
        f" Seconds per request, each sent alone: {', '.join(seconds)}." if seconds else ""
    )
    return (
        f'<div class="ts-panel ts-info ts-eval-advice"><div class="ts-eval-head">Recommendation: '
        f"{esc(CHOICES.get(advice['choice'], advice['choice']))}</div>"
        f'<div class="ts-eval-reason">{esc(advice["reason"])}</div></div>'
        f'{tradeoff_svg(report)}<p class="ts-caption">{esc(caption)}</p>'
    )
