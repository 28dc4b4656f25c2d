"""Scores and the verdict for the evaluation (training/evaluation/evaluate.py).

The metric that decides (choose_metric), from the references alone:
  - every reference is JSON           -> JSON field match: share of the reference's fields
                                         given with the same value (not JSON: 0)
  - all short (<= 5 words) or a small -> exact match, ignoring case, spacing and a final
    set of labels                        punctuation mark
  - otherwise                         -> ROUGE-L F1 on word tokens (shared wording, in order)

The verdict rule: a two-sided sign test on the rows where tuned and base score differently
(ties set aside); an improvement or a regression is called only when p < 0.05, else "no
clear improvement". A sign test because it is exact for any number of rows, has no random
resampling (the same rows always give the same verdict) and reads in one sentence. It needs
at least 6 rows that differ, all one way (p = 2/64 = 0.03); 6 wins to 3 losses is p = 0.51.
"""

import json
import math
import re
from dataclasses import dataclass

SIGNIFICANCE = 0.05  # the sign test's threshold: chance would give the split < 1 time in 20
SHORT_WORDS = 5  # references this short are right or wrong, not "similar"
RULE = (
    "How the verdict is decided: rows where tuned and base score the same are set aside; on "
    "the rest, one side must win so many more rows that chance alone would give a split this "
    "one-sided less than 1 time in 20 (a sign test, p < 0.05). Anything less is called no "
    "clear improvement."
)


@dataclass(frozen=True)
class Metric:
    label: str  # table row heading
    fmt: str  # display format of the mean
    explain: str  # one plain line shown next to it


# Every figure the report gives per side: row scores (row_scores) first, then what
# evaluate.summarise adds.
METRICS = {
    "json_fields": Metric(
        "JSON field match",
        "{:.0%}",
        "share of the reference's fields that the answer gives with the same value "
        "(an answer that is not JSON scores 0)",
    ),
    "exact_match": Metric(
        "Exact match",
        "{:.0%}",
        "share of answers that say exactly what the reference says, ignoring case, spacing "
        "and a final punctuation mark",
    ),
    "rouge_l": Metric(
        "ROUGE-L",
        "{:.2f}",
        "how much of the reference's wording the answer repeats, in the same order, from 0 "
        "(none) to 1 (all); it rewards similar words, not correct answers",
    ),
    "json_valid": Metric("Valid JSON", "{:.0%}", "share of answers that parse as JSON"),
    "json_keys": Metric(
        "Same JSON fields", "{:.0%}", "share of answers with exactly the reference's field names"
    ),
    "loss": Metric(
        "Loss",
        "{:.3f}",
        "how surprised the model is by the reference answers, token by token (lower = it "
        "expected them; the number training minimises)",
    ),
    "perplexity": Metric(
        "Perplexity",
        "{:.2f}",
        "e to the power of the loss: roughly how many tokens the model hesitates between at "
        "each step (1 = certain; lower is better)",
    ),
    "prompt_tokens": Metric(
        "Prompt tokens per request",
        "{:.0f}",
        "tokens sent to the model per question; few-shot and retrieved examples make it longer "
        "(and dearer)",
    ),
    "latency_s": Metric(
        "Seconds per request",
        "{:.2f}",
        "time to answer one question sent alone, greedy, on the machine that evaluated "
        "(measured on the first few rows)",
    ),
    "generated_tokens": Metric(
        "Generated tokens per reply", "{:.0f}", "length of the answers, in tokens"
    ),
}
SCORED_BY = {"json_fields": "JSON field match", "exact_match": "exact match", "rouge_l": "ROUGE-L"}


def normalise(text: str) -> str:
    """Lower case, single spaces, no final punctuation mark: "Paris." == " paris "."""
    return " ".join(text.lower().split()).rstrip(".!?,;:").rstrip()


def exact_match(output: str, reference: str) -> bool:
    return normalise(output) == normalise(reference)


def words(text: str) -> list[str]:
    """Lower-cased words and single punctuation marks: JSON braces and quotes count."""
    return re.findall(r"\w+|[^\w\s]", text.lower())


def rouge_l(output: str, reference: str) -> float:
    """ROUGE-L F1: longest common subsequence of word tokens, harmonic mean of P and R."""
    a, b = words(output), words(reference)
    if not a or not b:
        return float(a == b)
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    lcs = prev[-1]
    if not lcs:
        return 0.0
    precision, recall = lcs / len(a), lcs / len(b)
    return 2 * precision * recall / (precision + recall)


def parse_json(text: str):
    """The value if the whole text (surrounding whitespace aside) is a JSON object or array."""
    try:
        value = json.loads(text.strip())
    except ValueError:
        return None
    return value if isinstance(value, dict | list) else None


def same_structure(output: str, reference: str) -> bool:
    """Output parses as JSON of the reference's type, with the same keys for objects."""
    out, ref = parse_json(output), parse_json(reference)
    if out is None or ref is None or type(out) is not type(ref):
        return False
    return set(out) == set(ref) if isinstance(ref, dict) else True


def _same_value(a, b) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return normalise(a) == normalise(b)
    return type(a) is type(b) and a == b  # True is not 1 here


def field_match(output: str, reference: str) -> float:
    """Share of the reference object's fields the output object has with the same value
    (strings compared as exact_match does); for arrays, 1 when equal. Not JSON: 0."""
    out, ref = parse_json(output), parse_json(reference)
    if out is None or ref is None:
        return 0.0
    if not isinstance(ref, dict) or not ref:
        return float(_same_value(out, ref))
    if not isinstance(out, dict):
        return 0.0
    return sum(k in out and _same_value(out[k], v) for k, v in ref.items()) / len(ref)


def choose_metric(references: list[str]) -> tuple[str, str]:
    """(key of the metric that decides, the one plain sentence that says which and why)."""
    if all(parse_json(r) is not None for r in references):
        return "json_fields", (
            "Scored by JSON field match, because every reference is JSON: an answer scores the "
            "share of the reference's fields it gives with the same value, and 0 if it is not JSON."
        )
    labels = {normalise(r) for r in references}
    if all(len(r.split()) <= SHORT_WORDS for r in references):
        why = f"every reference is {SHORT_WORDS} words or fewer"
    elif len(labels) <= len(references) // 2:
        why = f"the references are a set of {len(labels)} labels"
    else:
        return "rouge_l", (
            "Scored by ROUGE-L, because the references are free text: it measures how much of "
            "the reference's wording an answer repeats in order (0 to 1), which rewards similar "
            "words rather than correct answers, so read the sample answers too."
        )
    return "exact_match", (
        f"Scored by exact match, because {why}: an answer is right only if it says exactly "
        "what the reference says, ignoring case, spacing and a final punctuation mark."
    )


def row_scores(output: str, reference: str, json_refs: bool) -> dict:
    scores = {"exact_match": exact_match(output, reference), "rouge_l": rouge_l(output, reference)}
    if json_refs:
        scores["json_fields"] = field_match(output, reference)
        scores["json_valid"] = parse_json(output) is not None
        scores["json_keys"] = same_structure(output, reference)
    return scores


def outcome(a: float, b: float) -> str:
    """One row's duel: "win" when a scores higher, "loss" when lower, else "tie"."""
    return "tie" if math.isclose(a, b, abs_tol=1e-9) else "win" if a > b else "loss"


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test: how often a fair coin splits wins + losses rows at least
    this unevenly. Ties are left out before calling."""
    n, k = wins + losses, min(wins, losses)
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)


def compare(rows: list[dict], side: str, other: str, metric: str) -> dict:
    """Per-row duel of `side` against `other` on `metric`: wins, ties, losses and the sign
    test's p-value."""
    counts = {"win": 0, "tie": 0, "loss": 0}
    for r in rows:
        counts[outcome(r["scores"][side][metric], r["scores"][other][metric])] += 1
    wins, ties, losses = counts["win"], counts["tie"], counts["loss"]
    return {"wins": wins, "ties": ties, "losses": losses, "p_value": sign_test(wins, losses)}


def rows_to_call(duel: dict) -> int | None:
    """About how many rows (ties included, at this tie rate) the sign test would need to call
    this split if it held; None for an even split. The normal approximation of the test (with
    continuity correction), so it is instant for any split: ((2s - 1)m - 1) / sqrt(m) >= 1.96
    for a share s of the m rows that differ; and never under the 6 the exact test needs."""
    wins, losses = duel["wins"], duel["losses"]
    if wins == losses:
        return None
    lead = 2 * max(wins, losses) / (wins + losses) - 1
    root = (1.96 + math.sqrt(1.96**2 + 4 * lead)) / (2 * lead)
    decisive = max(6, math.ceil(root**2))
    return math.ceil(decisive * (wins + duel["ties"] + losses) / (wins + losses))


def _rows(n: int) -> str:
    return f"{n:,} row" + ("" if n == 1 else "s")


def _chance(p: float) -> str:
    if p < SIGNIFICANCE:
        odds = "1,000" if p < 0.001 else "100" if p < 0.01 else "20"
        return f"chance alone would give a split this one-sided less than 1 time in {odds} (sign test, p = {p:.2g})"
    if p >= 0.5:
        return f"a split like this is what chance alone gives (sign test, p = {p:.2f})"
    return f"chance alone gives a split like this about 1 time in {round(1 / p)} (sign test, p = {p:.2f}): too often to rule out luck"


def call(duel: dict) -> str:
    """ "better", "worse" or "unclear": the sign test's call on a duel."""
    if duel["p_value"] >= SIGNIFICANCE:
        return "unclear"
    return "better" if duel["wins"] > duel["losses"] else "worse"


@dataclass(frozen=True)
class Verdict:
    outcome: str  # "improved", "few_shot_better", "retrieval_better", "regressed" or "unclear"
    headline: str  # was it worth it, in plain words
    details: str  # the row counts, the test's odds, what would settle it, the two baselines


FEW_SHOT_CALL = {
    "better": "clearly better",
    "worse": "clearly worse",
    "unclear": "no clear difference",
}


def verdict(
    vs_base: dict,
    vs_few: dict | None,
    k: int,
    saved: float | None,
    metric: str,
    vs_retrieved: dict | None = None,
    retrieval_k: int = 0,
) -> Verdict:
    """Improved only when tuned beats base by the rule (RULE) and neither prompted baseline
    (base + k few-shot examples, base + the retrieval_k most similar training examples)
    clearly beats tuned; regressed when base clearly beats tuned; otherwise unclear."""
    base_call = call(vs_base)
    w, t, lo = vs_base["wins"], vs_base["ties"], vs_base["losses"]
    baselines = [
        (kind, name, duel, call(duel))
        for kind, name, duel in (
            ("few_shot", f"the base model prompted with {k} examples", vs_few),
            (
                "retrieval",
                f"the base model given the {retrieval_k} most similar training examples",
                vs_retrieved,
            ),
        )
        if duel
    ]
    better = [(kind, name) for kind, name, _, c in baselines if c == "worse"]
    as_good = [name for _, name, _, c in baselines if c == "unclear"]
    if base_call == "worse":
        kind, head = "regressed", "Not worth it: the tuned model answers worse than the base model."
    elif base_call == "unclear":
        kind = "unclear"
        head = "No clear improvement: not enough evidence that fine-tuning was worth it."
    elif better:
        which, name = better[0]
        kind, head = f"{which}_better", f"Not worth it: {name} did better than fine-tuning."
    elif as_good:
        kind = "improved"
        head = (
            f"Worth it, though {' and '.join(as_good)} did about as well: the gain is the "
            "shorter prompt."
        )
    else:
        kind, head = (
            "improved",
            "Worth it: the tuned model answers clearly better than the base model.",
        )
    parts = [
        f"Against the base model the tuned model was better on {_rows(w)}, worse on {lo:,} and "
        f"the same on {t:,} (scored by {SCORED_BY[metric]}); {_chance(vs_base['p_value'])}."
    ]
    if base_call == "unclear":
        needed = rows_to_call(vs_base)
        if w + lo == 0:
            parts.append(
                "They scored the same on every row; the test needs at least 6 that differ."
            )
        elif w + lo < 6:
            told = f"{w + lo:,} of {_rows(w + t + lo)}"
            parts.append(f"Only {told} told the two apart; the test needs at least 6 that do.")
        if needed:
            parts.append(f"If this split held, about {_rows(needed)} would settle it.")
        elif w + lo:
            parts.append("Each won as many rows as the other.")
    for _, name, duel, c in baselines:
        parts.append(
            f"Against {name}: better on {_rows(duel['wins'])}, worse on "
            f"{duel['losses']:,}, the same on {duel['ties']:,} ({FEW_SHOT_CALL[c]})."
        )
    if saved:
        parts.append(f"The tuned model needs {saved:,.0f} fewer prompt tokens per request.")
    return Verdict(kind, head, " ".join(parts))
