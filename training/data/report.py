"""The validation report: structured findings and statistics, never an exception."""

from dataclasses import asdict, dataclass, field

FORMATS = ("messages", "sharegpt", "alpaca", "prompt_completion", "text")


@dataclass
class Finding:
    level: str  # "error" blocks training; "warning" does not
    row: int | None  # 1-based record number (JSONL/TXT: line, CSV/TSV: data row); None = whole file
    code: str  # stable identifier, e.g. "missing_messages"
    message: str  # what is wrong, in words a non-programmer understands
    hint: str  # how to fix it

    def to_json(self) -> dict:
        return {"row": self.row, "code": self.code, "message": self.message, "hint": self.hint}


@dataclass
class ValidationReport:
    format: str | None  # one of FORMATS, or None when it could not be told
    rows: int  # records read (good and bad)
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # findings per code, before any cap

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict:
        return {
            "format": self.format,
            "rows": self.rows,
            "errors": [f.to_json() for f in self.errors],
            "warnings": [f.to_json() for f in self.warnings],
            "stats": self.stats,
            "counts": self.counts,
        }


def finding_from_dict(d: dict, level: str) -> Finding:
    return Finding(level=level, **{k: d[k] for k in ("row", "code", "message", "hint")})


__all__ = ["FORMATS", "Finding", "ValidationReport", "asdict", "finding_from_dict"]
