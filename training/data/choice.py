"""Which data a run trains on: the Data tab's hand-off to training, and the split.

    choice = DataChoice(path="chats.jsonl")            # what the user picked (format: detect)
    choice = choice.checked(validate_file(...))        # + the detected format, mapping, verdict
    RunConfig(**choice.run_fields(), ...)              # the run's data settings
    train, val = load_splits(cfg)                      # exactly the worker's split

A `DataChoice` is plain data (deep-copyable, so it can sit in a gr.State). The report's
few figures travel with it as a `ReportSummary`, the only part of a ValidationReport the
Train tab needs (its verdict and the statistics its estimate reads).
"""

from dataclasses import dataclass, field, replace

from .examples import load_examples, split_examples
from .report import ReportSummary


@dataclass(frozen=True)
class DataChoice:
    path: str | None = None  # the data file (or hub:OWNER/NAME); None: nothing picked yet
    format: str | None = None  # None: detect
    mapping: dict[str, str] = field(default_factory=dict)  # canonical field -> column
    validation_file: str | None = None  # None: split the data
    summary: ReportSummary | None = None  # set once checked

    def __hash__(self) -> int:
        # By content, dicts included: gradio hashes a State's value to see whether it changed.
        return hash(repr(self))

    @property
    def ok(self) -> bool:
        """Checked and ready to train."""
        return self.summary is not None and self.summary.ok

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
        }


def load_splits(cfg, find=lambda path: path) -> tuple[list[dict], list[dict]]:
    """(train, validation) of a RunConfig's data: its validation file, else its seeded split.
    The worker trains on exactly this; the playground and the evaluation read it again.
    find: maps a path stored in the config to a readable one (runs outlive working folders)."""
    mapping = cfg.column_mapping or None
    examples = load_examples(find(cfg.data), fmt=cfg.format, mapping=mapping)
    if cfg.validation_file:
        return examples, load_examples(find(cfg.validation_file), fmt=cfg.format, mapping=mapping)
    return split_examples(examples, cfg.validation_split, cfg.seed)
