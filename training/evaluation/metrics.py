"""Per-row scores for the evaluation (training/evaluation/evaluate.py): exact match after whitespace
normalisation, ROUGE-L F1 on word tokens, JSON validity and same keys when the references
are JSON; and the head-to-head counts and the plain verdict sentence built from them."""

import json
import math
import re

# Every figure the report gives per side: key -> (label, display format). Row scores
# (row_scores) first, then what evaluate.summarise adds.
METRICS = {
    "exact_match": ("Exact match", "{:.0%}"),
    "rouge_l": ("ROUGE-L F1 (similarity)", "{:.3f}"),
    "json_valid": ("Valid JSON", "{:.0%}"),
    "json_keys": ("JSON with the reference's keys", "{:.0%}"),
    "loss": ("Validation loss (assistant tokens)", "{:.3f}"),
    "perplexity": ("Perplexity", "{:.2f}"),
    "prompt_tokens": ("Prompt tokens per request", "{:.0f}"),
    "generated_tokens": ("Generated tokens per reply", "{:.0f}"),
}


def normalise(text: str) -> str:
    return " ".join(text.split())


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


def row_scores(output: str, reference: str, json_refs: bool) -> dict:
    scores = {"exact_match": exact_match(output, reference), "rouge_l": rouge_l(output, reference)}
    if json_refs:
        scores["json_valid"] = parse_json(output) is not None
        scores["json_keys"] = same_structure(output, reference)
    return scores


def compare(rows: list[dict], side: str, other: str) -> dict:
    """Per-row ROUGE-L duel: wins / ties / losses of `side` against `other`."""
    wins = ties = losses = 0
    for r in rows:
        a, b = r["scores"][side]["rouge_l"], r["scores"][other]["rouge_l"]
        if math.isclose(a, b, abs_tol=1e-9):
            ties += 1
        elif a > b:
            wins += 1
        else:
            losses += 1
    return {"wins": wins, "ties": ties, "losses": losses}


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "es" if word.endswith("s") else "s")


def verdict_text(n: int, vs_base: dict, vs_few: dict | None, k: int, saved: float | None) -> str:
    text = f"tuned beats base on {vs_base['wins']} of {_count(n, 'row')}"
    text += f" ({_count(vs_base['ties'], 'tie')}, {_count(vs_base['losses'], 'loss')}, by ROUGE-L)"
    if vs_few:
        text += f"; tuned beats base + {k}-shot prompting on {vs_few['wins']} of {_count(n, 'row')}"
        text += f" ({_count(vs_few['ties'], 'tie')}, {_count(vs_few['losses'], 'loss')})"
    if saved:
        text += f", and saves {saved:.0f} prompt tokens per request"
    return text + "."
