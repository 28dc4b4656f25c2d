"""Which data a run trains on: the Data tab's hand-off to training, and the split.

    choice = DataChoice(path="chats.jsonl")            # what the user picked (format: detect)
    choice = choice.checked(validate_file(...))        # + the detected format, mapping, verdict
    RunConfig(**choice.run_fields(), ...)              # the run's data settings
    train, val = load_splits(cfg)                      # exactly the worker's split

A `DataChoice` is plain data (deep-copyable, so it can sit in a gr.State). The report's
few figures travel with it as a `ReportSummary`, the only part of a ValidationReport the
Train tab needs (its verdict and the statistics its estimate reads).

A checked choice is kept in the visitor's browser so a page reload brings it back:
`remember` signs it with a key only the server has and stores file paths relative to the
folders the app reads data from (uploads, samples), never as server paths; `recall`
accepts only a value it signed, whose files are still inside those folders.

Skipping rows with errors is a choice the user makes (`skip_bad_rows`, the RunConfig field of
the same name), never a default: the worker then trains on the other rows and lists the rows
it left out, with why, in RUN_DIR/skipped_rows.jsonl (`write_skipped`); `load_splits` with
`read_skipped` of that file gives the same split again.
"""

import hashlib
import hmac
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from .codes import CATALOGUE, SUMMARIES
from .examples import iter_examples, split_examples
from .report import ReportSummary

SKIPPED_ROWS = "skipped_rows.jsonl"  # in a run directory: {"file", "row", "code", "reason"}


@dataclass(frozen=True)
class DataChoice:
    path: str | None = None  # data file, or pinned hub: reference (hub.py); None: not yet
    format: str | None = None  # None: detect
    mapping: dict[str, str] = field(default_factory=dict)  # canonical field -> column
    validation_file: str | None = None  # None: split the data
    summary: ReportSummary | None = None  # set once checked
    skip_bad_rows: bool = False  # train on the rows without errors (the user ticked it)

    def __hash__(self) -> int:
        # By content, dicts included: gradio hashes a State's value to see whether it changed.
        return hash(repr(self))

    @property
    def ok(self) -> bool:
        """Checked and ready to train (on the good rows, when the user chose to skip the rest)."""
        if self.summary is None:
            return False
        return self.summary.ok or (self.skip_bad_rows and self.summary.skippable > 0)

    def checked(self, report) -> "DataChoice":
        """This choice as validated: the detected format and full column mapping filled in."""
        mapping = dict(report.detection.get("mapping") or self.mapping)
        fmt = report.format or self.format
        return replace(self, format=fmt, mapping=mapping, summary=report.summary())

    def run_fields(self) -> dict:
        """The RunConfig fields this choice sets."""
        return {
            "data": self.path or "",
            "format": self.format,
            "column_mapping": dict(self.mapping),
            "validation_file": self.validation_file,
            "skip_bad_rows": self.skip_bad_rows,
        }


def remember(choice: DataChoice, roots: dict[str, Path], key: bytes) -> dict | None:
    """The choice as a signed value for the browser (None: nothing worth keeping). roots:
    name -> folder the app reads data from; a file outside all of them is not kept."""
    if choice.summary is None or not choice.path:
        return None
    data = _relative(choice.path, roots)
    validation = _relative(choice.validation_file, roots) if choice.validation_file else None
    if data is None or (choice.validation_file and validation is None):
        return None
    memo = {
        "data": data,
        "validation": validation,
        "format": choice.format,
        "mapping": dict(choice.mapping),
        "skip_bad_rows": choice.skip_bad_rows,
    }
    return {**memo, "sig": _sign(memo, key)}


def recall(memo, roots: dict[str, Path], key: bytes) -> DataChoice | None:
    """The unchecked choice a `remember` value stands for; None when the value was not signed
    by this server, is malformed, or its files are gone or outside the roots."""
    try:
        if not isinstance(memo, dict) or not isinstance(memo.get("sig"), str):
            return None
        fields = {k: v for k, v in memo.items() if k != "sig"}
        if not hmac.compare_digest(memo["sig"], _sign(fields, key)):
            return None
        path = _absolute(fields["data"], roots)
        validation = _absolute(fields["validation"], roots) if fields["validation"] else None
        if path is None or (fields["validation"] and validation is None):
            return None
        return DataChoice(
            path=str(path),
            format=fields["format"],
            mapping=dict(fields["mapping"]),
            validation_file=str(validation) if validation else None,
            skip_bad_rows=bool(fields["skip_bad_rows"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _sign(memo: dict, key: bytes) -> str:
    text = json.dumps(memo, sort_keys=True, ensure_ascii=True)
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def _relative(path: str, roots: dict[str, Path]) -> list[str] | None:
    resolved = Path(path).resolve()
    for name, root in roots.items():
        if resolved.is_relative_to(root.resolve()):
            return [name, resolved.relative_to(root.resolve()).as_posix()]
    return None


def _absolute(where, roots: dict[str, Path]) -> Path | None:
    name, rel = where
    root = roots[name].resolve()
    path = (root / rel).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


def load_splits(cfg, find=lambda path: path, skip=None) -> tuple[list[dict], list[dict]]:
    """(train, validation) of a RunConfig's data: its validation file, else its seeded split.
    The worker trains on exactly this; the playground and the evaluation read it again.
    find: maps a path stored in the config to a readable one (runs outlive working folders).
    skip: {"data": rows, "validation": rows} left out first (`read_skipped` of a run); rows
    the format cannot read are never loaded anyway."""
    skip = skip or {}

    def load(path, leave_out) -> list[dict]:
        rows = iter_examples(find(path), fmt=cfg.format, mapping=cfg.column_mapping or None)
        return [example for row, example in rows if row not in leave_out]

    examples = load(cfg.data, skip.get("data", ()))
    if cfg.validation_file:
        return examples, load(cfg.validation_file, skip.get("validation", ()))
    return split_examples(examples, cfg.validation_split, cfg.seed)


def skipped_rows(report) -> list[dict]:
    """The rows a run leaves out when it skips rows with errors, each with why: the row's
    own message where the report kept it, else what its error code says."""
    said = {(f.file or "data", f.row): f.message for f in report.errors if f.row is not None}
    return [
        {
            "file": file,
            "row": row,
            "code": code,
            "reason": said.get((file, row)) or SUMMARIES.get(code, CATALOGUE[code][1]),
        }
        for file, row, code in report.rows_with_errors()
    ]


def write_skipped(rows: list[dict], path: Path) -> None:
    """RUN_DIR/skipped_rows.jsonl: one line per skipped row; no file when none is skipped."""
    path = Path(path)
    if not rows:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    tmp.replace(path)


def by_file(rows: list[dict]) -> dict[str, set[int]]:
    """Skipped rows as `load_splits` takes them: {"data": rows, "validation": rows}."""
    out: dict[str, set[int]] = {}
    for row in rows:
        out.setdefault(row["file"], set()).add(int(row["row"]))
    return out


def read_skipped(path: Path) -> dict[str, set[int]]:
    """by_file of a skipped_rows.jsonl ({} when there is none)."""
    try:
        lines = Path(path).read_text("utf-8").splitlines()
    except FileNotFoundError:
        return {}
    return by_file([json.loads(line) for line in lines])
