"""Numbers about a data set: distributions, OpenAI's epoch rule, the train/validation split.

Lengths are kept in compact arrays (a few bytes per row) while a file streams past, so
statistics of a million rows cost megabytes, not the rows themselves.
"""

from array import array

import numpy as np


class Lengths:
    """Per-example numbers collected while streaming: tokens, trained tokens, messages."""

    def __init__(self):
        self.tokens = array("i")
        self.trained = array("i")
        self.messages = array("i")

    def add(self, tokens: int, trained: int, messages: int) -> None:
        self.tokens.append(tokens)
        self.trained.append(trained)
        self.messages.append(messages)

    def __len__(self) -> int:
        return len(self.tokens)


def summary(values) -> dict:
    """{min, mean, median, p10, p90, max} (zeros for no data)."""
    a = np.frombuffer(values, dtype=np.int32) if isinstance(values, array) else np.asarray(values)
    if a.size == 0:
        return {"min": 0, "mean": 0.0, "median": 0.0, "p10": 0.0, "p90": 0.0, "max": 0}
    p10, median, p90 = np.percentile(a, [10, 50, 90])
    return {
        "min": int(a.min()),
        "mean": round(float(a.mean()), 1),
        "median": round(float(median), 1),
        "p10": round(float(p10), 1),
        "p90": round(float(p90), 1),
        "max": int(a.max()),
    }


def histogram(values, bins: int = 30) -> dict:
    """Token-length histogram for the UI: integer bin edges from 0 to the longest row."""
    a = np.frombuffer(values, dtype=np.int32) if isinstance(values, array) else np.asarray(values)
    if a.size == 0:
        return {"edges": [], "counts": []}
    top = max(int(a.max()), 1)
    step = max(1, -(-top // bins))  # ceil: whole tokens per bin
    edges = np.arange(0, top + step + 1, step)
    counts, _ = np.histogram(a, bins=edges)
    return {"edges": [int(e) for e in edges], "counts": [int(c) for c in counts]}


def recommended_epochs(n: int) -> int:
    """Passes over n training examples at RunConfig's batch: training/recipe.py's rule, the
    one the Train tab applies (3 passes, more for a small set, fewer for a large one)."""
    from training.recipe import epochs_for

    return epochs_for(n)


def validation_count(n: int, fraction: float) -> int:
    """How many of n examples the automatic split holds out (at least 1 when splitting)."""
    if n < 2 or fraction <= 0:
        return 0
    return max(1, min(n - 1, int(n * fraction + 0.5)))


def token_stats(lengths: Lengths, max_length: int) -> dict:
    tokens = np.frombuffer(lengths.tokens, dtype=np.int32)
    return {
        "messages_per_example": summary(lengths.messages),
        "tokens_per_example": summary(lengths.tokens),
        "assistant_tokens_per_example": summary(lengths.trained),
        "over_max_length": int((tokens > max_length).sum()),
        "total_training_tokens": int(np.minimum(tokens, max_length).sum(dtype=np.int64)),
        "histogram": histogram(lengths.tokens),
    }
