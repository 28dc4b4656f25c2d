"""The validation report: structured findings and statistics, never an exception."""

from dataclasses import asdict, dataclass, field

# "preference": chosen/rejected pairs, trained on the chosen replies only (never detected on
# its own: the user picks it, see detect.py).
FORMATS = ("messages", "sharegpt", "alpaca", "prompt_completion", "text", "preference")


@dataclass
class Finding:
    level: str  # "error" blocks training; "warning" does not
    row: int | None  # 1-based record number (JSONL/TXT: line, CSV/TSV: data row); None = whole file
    code: str  # stable identifier, e.g. "missing_messages"
    message: str  # what is wrong, in words a non-programmer understands
    hint: str  # how to fix it
    file: str | None = None  # "validation" when the row is in the uploaded validation file

    def to_json(self) -> dict:
        out = {"row": self.row, "code": self.code, "message": self.message, "hint": self.hint}
        if self.file:
            out["file"] = self.file
        return out


# The report statistics the pre-flight estimate and the Train tab read.
SUMMARY_STATS = (
    "examples",
    "total_training_tokens",
    "tokens_per_example",
    "max_length",
    "recommended_epochs",
    "over_max_length",
    "split",
    "token_estimate",
)


@dataclass(frozen=True)
class ReportSummary:
    ok: bool  # ready to train: readable and no errors
    format: str | None  # the detected (or chosen) format
    rows: int  # records read
    errors: int  # errors found (all of them, not only those the report kept)
    warnings: int
    stats: dict = field(default_factory=dict)  # SUMMARY_STATS from the report's statistics
    # Rows with errors that "skip the rows with errors" may leave out: 0 unless every error
    # is in a row and some rows are good (then training on the good ones is an option).
    skippable: int = 0

    def __hash__(self) -> int:
        return hash(repr(self))  # by content, the stats dict included


@dataclass
class ValidationReport:
    format: str | None  # one of FORMATS, or None when it could not be told
    rows: int  # records read (good and bad)
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # findings per code, before any cap
    readable: bool = True  # False: the file could not be read at all (CLI exit code 2)
    detection: dict = field(default_factory=dict)  # format, mapping, ambiguous, candidates, reason
    # Every row with an error, by file ("data" or "validation") and first error code:
    # {"data": {"unparseable_line": array of row numbers}}. Not part of to_json.
    bad_rows: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.readable and not self.errors

    @property
    def exit_code(self) -> int:
        """The CLI contract: 0 usable for training, 1 has errors, 2 unreadable."""
        return 2 if not self.readable else (1 if self.errors else 0)

    @property
    def error_count(self) -> int:
        """Errors counted before the report capped its list (counts is per code)."""
        return _counted(self.errors, self.counts)

    @property
    def warning_count(self) -> int:
        return _counted(self.warnings, self.counts)

    @property
    def skippable(self) -> int:
        """Rows a run may leave out to train on the rest: every error is in a row (none is
        about the file as a whole) and some rows are good; else 0."""
        if not self.errors or not self.readable or not self.stats.get("examples"):
            return 0
        if any(f.row is None for f in self.errors):
            return 0
        return sum(len(rows) for codes in self.bad_rows.values() for rows in codes.values())

    def rows_with_errors(self) -> list[tuple[str, int, str]]:
        """(file, row, first error code) of every row with an error, file by file in row
        order; file is "data" or "validation"."""
        out = []
        for file, codes in self.bad_rows.items():
            pairs = [(int(r), code) for code, rows in codes.items() for r in rows]
            out += [(file, row, code) for row, code in sorted(pairs)]
        return out

    def summary(self):
        """The few figures that travel with a DataChoice (training/data/choice.py)."""
        return ReportSummary(
            ok=self.ok,
            format=self.format,
            rows=self.rows,
            errors=self.error_count,
            warnings=self.warning_count,
            stats={k: self.stats[k] for k in SUMMARY_STATS if k in self.stats},
            skippable=self.skippable,
        )

    def groups(self) -> list[dict]:
        """Findings grouped by code, errors first, for a "grouped by problem" view:
        [{"level", "code", "count" (all, before the storage cap), "hint", "findings"}]."""
        out: dict[str, dict] = {}
        for f in self.errors + self.warnings:
            group = out.setdefault(
                f.code,
                {"level": f.level, "code": f.code, "count": 0, "hint": f.hint, "findings": []},
            )
            group["findings"].append(f)
            group["count"] = max(self.counts.get(f.code, 0), len(group["findings"]))
        return list(out.values())

    def to_json(self) -> dict:
        return {
            "format": self.format,
            "rows": self.rows,
            "errors": [f.to_json() for f in self.errors],
            "warnings": [f.to_json() for f in self.warnings],
            "stats": self.stats,
            "counts": self.counts,
            "readable": self.readable,
            "detection": self.detection,
        }


def _counted(findings: list[Finding], counts: dict[str, int]) -> int:
    codes = {f.code for f in findings}
    return max(len(findings), sum(counts.get(c, 0) for c in codes))


def finding_from_dict(d: dict, level: str) -> Finding:
    return Finding(
        level=level, **{k: d[k] for k in ("row", "code", "message", "hint")}, file=d.get("file")
    )


__all__ = ["FORMATS", "Finding", "ReportSummary", "ValidationReport", "asdict", "finding_from_dict"]
