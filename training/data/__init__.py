"""Data in: load any common format, detect it, normalise it, validate it, preview it.

Public API (the UI and the training worker use only these):

    validate_file(path, *, tokenizer=None, max_length=1024, ...) -> ValidationReport
    preview_file(path, n=20, fmt=None, mapping=None) -> Preview
    iter_examples / load_examples(path, fmt=None, mapping=None)
    split_examples(examples, fraction=0.1, seed=42) -> (train, validation)
    render_example(example, tokenizer) -> str
    detect_format(records, fmt=None, mapping=None) -> Detection
    SAMPLES / SAMPLE_DESCRIPTIONS: the bundled example data sets

This package never imports gradio; torch and transformers are not imported either (a
tokenizer object is passed in by the caller).
"""

from .detect import Detection, detect_format
from .examples import Preview, iter_examples, load_examples, preview_file, split_examples
from .load import DataError
from .normalise import normalise
from .report import FORMATS, Finding, ValidationReport
from .samples import SAMPLE_DESCRIPTIONS, SAMPLES
from .tokens import render_example
from .validate import validate_file

__all__ = [
    "FORMATS", "SAMPLES", "SAMPLE_DESCRIPTIONS", "DataError", "Detection", "Finding",
    "Preview", "ValidationReport", "detect_format", "iter_examples", "load_examples",
    "normalise", "preview_file", "render_example", "split_examples", "validate_file",
]  # fmt: skip
