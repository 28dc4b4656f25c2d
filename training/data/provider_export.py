"""Take a data set to OpenAI or Azure OpenAI: chat JSONL for their supervised fine-tuning,
checked against their rules, with token counts, default epochs and billed tokens.

    result = export_for_provider("qa.csv", "azure", model="gpt-4.1-mini")
    result.ok, result.out, result.to_json()

One streaming pass, as `validate_file` makes: the file is read and its format detected as
`iter_examples` does (any format Tunesmith reads, a column mapping, a chosen format), and
each row is normalised, so a row gets the validator's own findings (no assistant turn, an
unknown role, empty content, images, ...). Each good row is then put in the provider's form
(providers.py: tool calls with ids and JSON-text arguments, results tied to their calls,
weights only on assistant turns), its tokens counted with the target model's tokenizer
(openai_tokens.py), and it is written to a temporary file beside the output.

Rows with an error are left out and listed (`skipped`), so what is written is always valid
row by row. The file is kept only when the export as a whole is acceptable (enough
examples, under the size and job limits); the result's `ok` is True only when nothing had
to be left out either. A bad file gives findings, never an exception; only an unknown
target or model, or an output path that is the input itself, raises ValueError.

Its length: the one pass and its per-row bookkeeping (findings, rows left out, lengths, the
written lines) share the scan's state and read best together, as in validate.py.
"""

import json
import os
from array import array
from dataclasses import dataclass, field
from pathlib import Path

from .codes import CATALOGUE, ERROR, UNREADABLE, Findings, make_finding
from .detect import Detection
from .examples import open_detected, require_format
from .load import BAD, DataError
from .normalise import normalise
from .openai_tokens import CHARS_PER_TOKEN, count_example, encoding
from .providers import (
    MB,
    Provider,
    TargetModel,
    billed_tokens,
    default_epochs,
    find_model,
    provider_record,
)
from .report import ValidationReport
from .stats import summary

SKIPPED_LISTED = 1000  # rows left out that the result lists one by one (all are counted)
UTF8_BOM = b"\xef\xbb\xbf"
ESTIMATE = (
    f"estimate: about {CHARS_PER_TOKEN} characters per token "
    "(tiktoken's encoding files are not available offline)"
)


@dataclass
class ProviderExport:
    target: str  # "openai" or "azure"
    model: str  # the base model the file was checked for
    report: ValidationReport  # format, rows read, findings (errors, warnings, counts)
    out: Path | None = None  # the chat JSONL written; None when no usable file could be
    examples: int = 0  # examples exported (or that would have been)
    skipped: list[dict] = field(default_factory=list)  # {"row", "code", "reason"}, the first 1,000
    skipped_count: int = 0  # every row left out
    tokens: dict = field(default_factory=dict)  # total, and per example min, mean, median, max...
    tokenizer: str = ""  # "tiktoken o200k_base", or how the counts were estimated
    tokens_estimated: bool = False
    token_limit: int = 0  # the model's tokens per example
    min_examples: int = 0  # the provider's minimum
    epochs: int = 0  # what OpenAI's default rule picks for these examples
    billed_tokens: int = 0  # sum of min(tokens, limit) over examples, times epochs
    bytes: int = 0  # size of the exported file

    @property
    def ok(self) -> bool:
        """Usable by the provider as it is: readable, no row left out for an error, no
        limit broken."""
        return self.report.ok and self.out is not None

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_json(self) -> dict:
        return {
            "target": self.target,
            "model": self.model,
            "out": str(self.out) if self.out else None,
            "ok": self.ok,
            "format": self.report.format,
            "rows": self.report.rows,
            "examples": self.examples,
            "skipped": self.skipped,
            "skipped_count": self.skipped_count,
            "errors": [f.to_json() for f in self.report.errors],
            "warnings": [f.to_json() for f in self.report.warnings],
            "counts": self.report.counts,
            "tokens": self.tokens,
            "tokenizer": self.tokenizer,
            "tokens_estimated": self.tokens_estimated,
            "token_limit": self.token_limit,
            "min_examples": self.min_examples,
            "epochs": self.epochs,
            "billed_tokens": self.billed_tokens,
            "bytes": self.bytes,
            "readable": self.report.readable,
            "detection": self.report.detection,
        }


def default_out(path, target: str) -> Path:
    """`<stem>.<target>.jsonl` next to the input (qa.csv.gz -> qa.openai.jsonl)."""
    path = Path(path)
    stem = path.name.removesuffix(".gz").rsplit(".", 1)[0] or path.name
    return path.with_name(f"{stem}.{target}.jsonl")


def _first_error(codes) -> str:
    """The first error among codes (or the first code, when none is an error)."""
    codes = list(codes)
    return next((c for c in codes if CATALOGUE[c][0] == ERROR), codes[0])


class _Export:
    """One pass over one file: `open` decides the format, `stream` checks every row and
    writes the good ones; findings, rows left out and token counts are kept here."""

    def __init__(self, provider: Provider, model: TargetModel, findings: Findings):
        self.provider, self.model, self.findings = provider, model, findings
        self.enc = encoding(model.encoding)
        self.rows = self.parsed = self.bytes = 0
        self.lengths = array("i")
        self.skipped: list[dict] = []
        self.skipped_count = 0
        self.fatal = None  # catalogue code of a DataError that stopped the pass
        self.usable = False  # the format is known and its rows can be exported
        self.detection, self.columns = Detection(None), []
        self.records = self.sink = None

    def skip(self, row: int, code: str, details: dict) -> None:
        self.skipped_count += 1
        if len(self.skipped) < SKIPPED_LISTED:
            reason = make_finding(code, row, **details).message
            self.skipped.append({"row": row, "code": code, "reason": reason})

    def write(self, record: dict, tokens: int) -> None:
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        self.sink.write(line)
        self.bytes += len(line)
        self.lengths.append(tokens)

    def announce(self, detection) -> bool:
        """File-level findings about the format; False when no row can be exported."""
        if "preference" in detection.kinds and detection.format is None:
            mapping = detection.mapping
            columns = f"“{mapping.get('chosen')}” and “{mapping.get('rejected')}”"
            self.findings.add("preference_data", columns=columns)
            return False
        if detection.format is None:
            return False  # reported after the pass, once we know whether any row parsed
        try:
            require_format(detection, self.columns)
        except DataError as e:
            self.findings.add(e.code, None, **e.details)
            return False
        if detection.format == "text":
            self.findings.add("provider_plain_text", provider=self.provider.label)
            return False
        if detection.ambiguous:
            self.findings.add("ambiguous_format", detail=detection.reason)
        if detection.format == "preference":
            self.findings.add("chosen_replies_only")
        return True

    def open(self, path, fmt, mapping) -> None:
        """Open the file and decide its format; `usable` says whether rows can be exported."""
        try:
            source, detection, self.records, self.columns = open_detected(path, fmt, mapping)
        except DataError as e:
            self.fatal = e.code
            self.findings.add(e.code, None, **e.details)
            return
        self.detection = detection
        for code, details in source.notices:
            self.findings.add(code, None, **details)
        self.usable = self.announce(detection)

    def stream(self, sink) -> None:
        """Every row: counted, checked and, when usable and good, written to sink."""
        add, self.sink = self.findings.add, sink
        if sink is not None and self.provider.bom:
            sink.write(UTF8_BOM)
            self.bytes = len(UTF8_BOM)
        try:
            for row, value, issues in self.records or ():
                self.rows += 1
                for code, details in issues:
                    add(code, row, **details)
                if value is BAD:
                    found = dict(issues) or {"unparseable_line": {"detail": "?"}}
                    code = _first_error(found)
                    self.skip(row, code, found[code])
                    continue
                self.parsed += 1
                if self.usable:
                    self.example(row, value)
        except DataError as e:  # rows read before a fatal error in the file still count
            self.fatal = e.code
            add(e.code, None, **e.details)
        known = self.detection.format is not None or "preference" in self.detection.kinds
        if not known and self.parsed and self.fatal is None:
            add("unknown_format", columns=", ".join(map(str, self.columns)) or "none")
        if self.rows == 0 and self.fatal is None:
            add("empty_file")

    def example(self, row: int, value) -> None:
        """Check, convert, count and write one row, or leave it out with the reason."""
        add, label = self.findings.add, self.provider.label
        example, problems = normalise(value, self.detection)
        for code, details in problems.items():
            add(code, row, **details)
        if example is None:  # an error, or a row labelled undesirable (KTO)
            code = _first_error(problems)
            self.skip(row, code, problems[code])
            return
        if "text" in example:  # a preference pair whose chosen value is plain text
            add("no_assistant_message", row)
            self.skip(row, "no_assistant_message", {})
            return
        record, changes = provider_record(example)
        for code, details in changes:
            add(code, row, provider=label, **details)
        errors = [(code, details) for code, details in changes if CATALOGUE[code][0] == ERROR]
        if errors:
            self.skip(row, *errors[0])
            return
        tokens, limit = count_example(record, self.enc), self.model.example_tokens
        if tokens > limit:
            details = {"tokens": f"{tokens:,}", "limit": f"{limit:,}"}
            details |= {"model": self.model.name, "provider": label}
            add("provider_too_long", row, **details)
            self.skip(row, "provider_too_long", details)
            return
        self.write(record, tokens)

    def limits(self, epochs: int, billed: int) -> None:
        """The provider's limits on the export as a whole, checked only when rows could be
        exported at all (otherwise a file-level finding already says why not)."""
        if not self.usable or self.fatal is not None:
            return
        provider, add, n = self.provider, self.findings.add, len(self.lengths)
        label = provider.label
        if n < provider.min_examples:
            add("provider_few_examples", count=n, minimum=provider.min_examples, provider=label)
        if self.bytes > provider.max_file_bytes:
            size, limit = f"{self.bytes / MB:,.1f}", provider.max_file_bytes // MB
            add("provider_file_too_large", size=size, limit=limit, provider=label)
        if provider.max_job_tokens is not None and billed > provider.max_job_tokens:
            add(
                "provider_job_too_large",
                tokens=f"{billed:,}",
                epochs=epochs,
                per_epoch=f"{billed // max(epochs, 1):,}",
                limit=f"{provider.max_job_tokens:,}",
                provider=label,
            )


def _export(path, target, provider, model, fmt, mapping, out: Path) -> ProviderExport:
    findings = Findings()
    scan = _Export(provider, model, findings)
    if scan.enc is None:
        findings.add("provider_tokens_estimated")
    scan.open(path, fmt, mapping)
    tmp, written = out.with_name(f".{out.name}.{os.getpid()}.tmp"), None
    try:
        if scan.usable:  # only then is there anything to write, and a place to make
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as sink:
                scan.stream(sink)
        else:
            scan.stream(None)
        epochs = default_epochs(len(scan.lengths))
        billed = billed_tokens(scan.lengths, model.example_tokens, epochs)
        scan.limits(epochs, billed)
        if scan.lengths and not any(f.row is None for f in findings.errors):
            os.replace(tmp, out)
            written = out
    finally:
        tmp.unlink(missing_ok=True)
    readable = scan.fatal not in UNREADABLE and not (scan.rows and not scan.parsed)
    report = ValidationReport(format=scan.detection.format, rows=scan.rows, readable=readable)
    report.detection = scan.detection.to_json()
    return ProviderExport(
        target=target,
        model=model.name,
        report=findings.into(report),
        out=written,
        examples=len(scan.lengths),
        skipped=scan.skipped,
        skipped_count=scan.skipped_count,
        tokens={"total": sum(scan.lengths), **summary(scan.lengths)},
        tokenizer=f"tiktoken {model.encoding}" if scan.enc is not None else ESTIMATE,
        tokens_estimated=scan.enc is None,
        token_limit=model.example_tokens,
        min_examples=provider.min_examples,
        epochs=epochs,
        billed_tokens=billed,
        bytes=scan.bytes if written else 0,
    )


def export_for_provider(
    path,
    target: str,
    model: str | None = None,
    fmt: str | None = None,
    mapping: dict[str, str] | None = None,
    out=None,
) -> ProviderExport:
    """Export `path` as chat JSONL for `target` ("openai" or "azure") and `model` (its
    default when None; a short name such as "gpt-4.1-mini" works); `out` defaults to
    `<stem>.<target>.jsonl` next to the input. ValueError for an unknown target or model
    or an `out` that is the input; every problem with the data is a finding instead."""
    provider, chosen = find_model(target, model)
    out = Path(out) if out else default_out(path, target)
    if out.exists() and Path(path).exists() and out.resolve() == Path(path).resolve():
        raise ValueError(f"The output {out} is the input file itself; choose another output.")
    findings = Findings()
    try:
        return _export(path, target, provider, chosen, fmt, mapping, out)
    except OSError as e:  # the output cannot be written (a folder, no permission, disk full)
        findings.add("output_not_written", path=out, detail=e.strerror or type(e).__name__)
    except Exception as e:  # a bug must still produce a report, never a traceback
        findings.add("unreadable_file", detail=f"unexpected problem ({type(e).__name__}: {e})")
    report = findings.into(ValidationReport(format=None, rows=0, readable=False))
    return ProviderExport(target=target, model=chosen.name, report=report)
