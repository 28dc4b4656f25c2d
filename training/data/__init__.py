"""Data in: load any common format, detect it, normalise it, validate it, preview it, and
turn examples into trained tokens.

Public API (the UI, the worker and the backends use only these):

    validate_file(path, *, tokenizer=None, max_length=1024, ...) -> ValidationReport
    export_for_provider(path, "openai" | "azure", model=None, ...) -> ProviderExport: chat
        JSONL for OpenAI / Azure OpenAI fine-tuning, checked against their rules
    preview_file(path, n=20, fmt=None, mapping=None) -> Preview
    iter_examples / load_examples(path, fmt=None, mapping=None)
    split_examples(examples, fraction=0.1, seed=42) -> (train, validation)
    DataChoice / ReportSummary: what the Data tab hands to training (choice.py)
    load_splits(cfg, skip=None) -> (train, validation), exactly as the worker trains
    skipped_rows / write_skipped / read_skipped: the rows a run leaves out, and why
    render_example(example, tokenizer) -> str
    encode_examples / explain_example: token ids and which of them are trained (labels.py)
    detect_format(records, fmt=None, mapping=None) -> Detection
    SAMPLES / SAMPLE_DESCRIPTIONS: the bundled example data sets

Modules: load (files and streams; per format jsonfile, csvfile, parquetfile; limits on
reading, streams.py; text encodings, encoding.py) -> detect (format) -> normalise (one
internal form; tool calls, tools.py) -> validate (findings, codes.py; statistics, stats.py;
token counts, tokens.py) -> report. For OpenAI and Azure OpenAI: provider_export (their
limits, providers.py; tiktoken counts offline, openai_tokens.py).
This package never imports gradio; torch and transformers are not imported either (a
tokenizer object is passed in by the caller).
"""

from .choice import SKIPPED_ROWS, DataChoice, load_splits, read_skipped, skipped_rows, write_skipped
from .detect import Detection, detect_format
from .examples import Preview, iter_examples, load_examples, preview_file, split_examples
from .labels import encode_examples, explain_example
from .load import DataError
from .normalise import normalise
from .provider_export import ProviderExport, export_for_provider
from .report import FORMATS, Finding, ReportSummary, ValidationReport
from .samples import SAMPLE_DESCRIPTIONS, SAMPLES
from .tokens import render_example
from .validate import validate_file

__all__ = [
    "FORMATS",
    "SAMPLES",
    "SAMPLE_DESCRIPTIONS",
    "SKIPPED_ROWS",
    "DataChoice",
    "DataError",
    "Detection",
    "Finding",
    "Preview",
    "ProviderExport",
    "ReportSummary",
    "ValidationReport",
    "detect_format",
    "encode_examples",
    "explain_example",
    "export_for_provider",
    "iter_examples",
    "load_examples",
    "load_splits",
    "normalise",
    "preview_file",
    "read_skipped",
    "render_example",
    "skipped_rows",
    "split_examples",
    "validate_file",
    "write_skipped",
]
