"""Run configuration: one dataclass, YAML in and out, validated on construction.

Defaults follow common practice: AutoTrain's LoRA r16 / alpha 32 / dropout 0.05 on all
linear layers; 3 epochs (OpenAI's target); lr 2e-4, the usual LoRA rate (full fine-tunes
use ~2e-5, adapters need ~10x more); 4 sequences x 2 accumulation = 8 sequences per
optimizer step. `python -m training train config.yaml` reproduces any run from the UI.

Configs are read strictly, since a YAML file can hold anything: each value must have its
field's type (a quoted 'no' is text, and truthy), and the YAML must be plain (no tags, no
anchors or aliases, no repeated keys, at most 1 MB). Every problem is one ValueError line.

Its length: the dataclass's one-line field help and the strict YAML reader (no aliases, tags
or repeated keys) belong with the fields they check.
"""

import math
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from training.data.report import FORMATS

DEFAULT_MODEL = "bundled/SmolLM2-135M-Instruct"
BACKENDS = ("lora", "autotrain")
METHODS = ("lora", "qlora")
SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup")
DISTRIBUTED = ("auto", "none", "ddp", "fsdp")  # engines: configs/accelerate/<name>.yaml
TRACKERS = ("none", "trackio", "tensorboard", "wandb")  # training/tracking.py
MAX_CONFIG_BYTES = 1_000_000
EXPECTED = {  # field type -> what a config must hold, in words
    bool: "true or false",
    int: "a whole number (like 10)",
    float: "a number (like 0.5)",
    str: "text",
    str | None: "text or empty",
    dict[str, str]: "a mapping of text to text (like {prompt: question})",
}


def _help(text: str, **kw):
    return field(metadata={"help": text}, **kw)


@dataclass
class RunConfig:
    # --- model and method
    model: str = _help("Base model: catalogue key, local folder or Hub id.", default=DEFAULT_MODEL)
    backend: str = _help("Training backend: 'lora' (TRL + PEFT) or 'autotrain'.", default="lora")
    method: str = _help("'lora', or 'qlora' (4-bit base, CUDA only).", default="lora")
    trust_remote_code: bool = _help(
        "Run code shipped with the model (only if you trust it).", default=False
    )
    init_adapter: str | None = _help(
        "Start from this adapter folder (continue training).", default=None
    )
    # --- data
    data: str = _help("Training data file (JSONL, JSON, CSV, TSV, Parquet, TXT).", default="")
    format: str | None = _help("Data format; empty = detect automatically.", default=None)
    column_mapping: dict[str, str] = _help(
        "Role -> your column, e.g. {prompt: question, completion: answer}.", default_factory=dict
    )
    validation_file: str | None = _help(
        "Separate validation file; empty = split the data.", default=None
    )
    validation_split: float = _help(
        "Share of rows held out for validation when no file is given.", default=0.1
    )
    skip_bad_rows: bool = _help(
        "Train on the rows without errors, leaving out the rows with errors (listed, with why, "
        "in the run's skipped_rows.jsonl); off = any error stops the run.",
        default=False,
    )
    # --- LoRA
    lora_r: int = _help(
        "Adapter size: how much it can learn (8-64; larger learns more and uses more memory).",
        default=16,
    )
    lora_alpha: int = _help(
        "How strongly the adapter's changes count; twice the adapter size is usual.", default=32
    )
    lora_dropout: float = _help(
        "Share of the adapter's inputs ignored at random while training (against memorising).",
        default=0.05,
    )
    target_modules: str = _help(
        "Layers that get an adapter: 'all-linear' (all of them) or names separated by commas.",
        default="all-linear",
    )
    # --- schedule
    epochs: float = _help("Passes over the training data.", default=3.0)
    max_steps: int = _help(
        "Stop after this many updates (optimizer steps); -1 = train for the passes above.",
        default=-1,
    )
    learning_rate: float = _help(
        "How big each update is: too small learns nothing, too large forgets what the model "
        "knew. The Train tab suggests one for the model's size.",
        default=2e-4,
    )
    lr_scheduler: str = _help(
        "How the update size changes over the run after warm-up.", default="cosine"
    )
    warmup_ratio: float = _help(
        "Share of the run spent raising the update size from zero (gentle first updates).",
        default=0.03,
    )
    batch_size: int = _help(
        "Examples processed together per step (more: faster, but more memory).", default=4
    )
    grad_accum: int = _help(
        "Steps added up into one update: a larger batch without more memory.", default=2
    )
    max_length: int = _help(
        "Longest example in tokens (word pieces); longer ones are cut.", default=1024
    )
    # --- evaluation, checkpoints, logging
    eval_steps: int = _help(
        "Check the held-out examples every N steps (0 = only at the end).", default=50
    )
    save_steps: int = _help(
        "Save a checkpoint to resume or compare from every N steps.", default=50
    )
    logging_steps: int = _help(
        "Record the loss (how wrong the model still is) every N steps.", default=5
    )
    early_stopping_patience: int = _help(
        "Stop when the held-out loss has not improved for N checks (0 = never).", default=0
    )
    seed: int = _help("Random seed for the split, initialisation and data order.", default=42)
    # --- several GPUs (training/jobs/launch.py): ignored on a CPU or a single GPU
    distributed: str = _help(
        "With several GPUs: 'auto' (data parallel when the model fits one GPU, FSDP when it "
        "does not), 'none' (one GPU), 'ddp' or 'fsdp'. Each GPU takes batch_size examples a "
        "step, so a step sees batch_size x grad_accum x GPUs.",
        default="auto",
    )
    num_processes: int = _help(
        "GPUs to train on (one process each); 0 = every GPU visible.", default=0
    )
    report_to: str = _help(
        "Experiment tracking: 'none', 'trackio' or 'tensorboard' (files in the run directory), "
        "or 'wandb' (Weights & Biases with this machine's WANDB_API_KEY, else offline files); "
        "each only where its package is installed.",
        default="none",
    )

    def __post_init__(self):
        problems = []
        for f in fields(self):
            ok, value = _strict(f.type, getattr(self, f.name))
            if ok:
                setattr(self, f.name, value)
            else:
                problems.append(f"{f.name} must be {EXPECTED[f.type]}, not {_shown(value)}")
        if problems:  # the range checks below need the right types
            raise ValueError("Invalid training config: " + "; ".join(problems) + ".")
        if self.backend not in BACKENDS:
            problems.append(f"backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")
        if self.method not in METHODS:
            problems.append(f"method must be one of {', '.join(METHODS)}, not {self.method!r}")
        if self.format not in (None, "", *FORMATS):
            problems.append(
                f"format must be one of {', '.join(FORMATS)} or empty, not {self.format!r}"
            )
        if self.distributed not in DISTRIBUTED:
            problems.append(
                f"distributed must be one of {', '.join(DISTRIBUTED)}, not {self.distributed!r}"
            )
        elif self.distributed == "fsdp" and self.method == "qlora":
            problems.append(
                "FSDP with QLoRA is not supported here: use distributed 'ddp' (a 4-bit base "
                "fits one GPU per copy)"
            )
        if self.report_to not in TRACKERS:
            problems.append(
                f"report_to must be one of {', '.join(TRACKERS)}, not {self.report_to!r}"
            )
        if self.num_processes < 0:
            problems.append("num_processes cannot be negative (0 = every GPU)")
        if self.lr_scheduler not in SCHEDULERS:
            problems.append(f"lr_scheduler must be one of {', '.join(SCHEDULERS)}")
        if not 0 <= self.validation_split < 0.5:
            problems.append("validation_split must be at least 0 and below 0.5")
        for name in (
            "lora_r",
            "lora_alpha",
            "batch_size",
            "grad_accum",
            "max_length",
            "logging_steps",
        ):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1")
        for name in ("eval_steps", "save_steps", "early_stopping_patience"):
            if getattr(self, name) < 0:
                problems.append(f"{name} cannot be negative")
        if not 0 <= self.lora_dropout < 1:
            problems.append("lora_dropout must be between 0 and 1")
        if not 0 < self.learning_rate < 1:
            problems.append("learning_rate must be above 0 and below 1 (try 2e-4)")
        if not 0 <= self.warmup_ratio < 1:
            problems.append("warmup_ratio must be between 0 and 1")
        if self.max_steps == 0 or self.max_steps < -1:
            problems.append("max_steps must be a positive number, or -1 to train by epochs")
        if self.max_steps == -1 and self.epochs <= 0:
            problems.append("epochs must be above 0 (or set max_steps)")
        if self.max_length < 16:
            problems.append("max_length below 16 tokens leaves nothing to learn from")
        if not self.target_modules.strip():
            problems.append("target_modules cannot be empty (use 'all-linear')")
        if self.early_stopping_patience > 0:
            # Early stopping watches eval_loss and restores the best checkpoint, so it needs
            # evaluations and checkpoints on the same steps.
            if self.eval_steps == 0 or not (self.validation_split > 0 or self.validation_file):
                problems.append(
                    "early stopping needs evaluation: set eval_steps above 0 and a "
                    "validation_split or validation_file"
                )
            elif self.save_steps == 0 or self.save_steps % self.eval_steps:
                problems.append(
                    "early stopping restores the best checkpoint: save_steps must be a "
                    "multiple of eval_steps"
                )
        if problems:
            raise ValueError("Invalid training config: " + "; ".join(problems) + ".")
        if self.format == "":
            self.format = None

    def to_dict(self) -> dict:
        return asdict(self)

    def to_yaml(self, path: Path | None = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(_cut(k if isinstance(k, str) else repr(k)) for k in data if k not in known)
        if unknown:
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise ValueError(
                f"Unknown config keys: {', '.join(map(_shown_key, unknown[:5]))}{more} "
                f"(known: {', '.join(sorted(known))})."
            )
        return cls(**data)

    @classmethod
    def from_yaml(cls, path_or_text) -> "RunConfig":
        """A config from a YAML file (a Path) or YAML text; ValueError (one line) when it
        is not a valid config, OSError when the file cannot be read."""
        text = path_or_text
        if isinstance(path_or_text, Path):
            with open(path_or_text, "rb") as f:
                text = f.read(MAX_CONFIG_BYTES + 1)  # never more, whatever the file is
        if len(text) > MAX_CONFIG_BYTES:
            raise ValueError("The config is larger than 1 MB; a config is a few lines of YAML.")
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(f"The config {path_or_text.name} is not UTF-8 text.") from None
        data = _load_yaml(text)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ValueError("A config file must be a YAML mapping of key: value lines.")
        return cls.from_dict(data)


class _PlainLoader(yaml.SafeLoader):
    """Safe YAML without anchors and aliases (a few lines of them expand to gigabytes, and a
    config never needs them), without tags and without repeated keys (the last one won)."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise yaml.MarkedYAMLError(
                problem="anchors and aliases (&name, *name) are not allowed in a config",
                problem_mark=event.start_mark,
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value in seen:
                raise yaml.MarkedYAMLError(
                    problem=f"{_shown_key(_cut(key.value))} is set twice",
                    problem_mark=key.start_mark,
                )
            seen.add(key.value if isinstance(key, yaml.ScalarNode) else id(key))
        return super().construct_mapping(node, deep)

    def construct_undefined(self, node):
        raise yaml.MarkedYAMLError(
            problem=f"the YAML tag {_cut(node.tag.replace('tag:yaml.org,2002:', '!!'))} is not "
            "allowed in a config",
            problem_mark=node.start_mark,
        )


_PlainLoader.add_constructor(None, _PlainLoader.construct_undefined)
# YAML 1.1 reads 1e-3 (no dot) as text; configs mean the number, as YAML 1.2 and JSON do.
_PlainLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _load_yaml(text: str):
    try:
        return yaml.load(text, Loader=_PlainLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        what = ", ".join(p for p in (e.context, e.problem) if p)
        problem = f"{what}{where}"
    except RecursionError:
        problem = "it is nested too deeply"
    except (ValueError, OverflowError) as e:  # e.g. an integer of 5,000 digits
        problem = (
            "a number in it has too many digits" if "digits" in str(e) else "a value is unreadable"
        )
    except yaml.YAMLError as e:
        problem = str(e).splitlines()[0] if str(e) else type(e).__name__
    raise ValueError(f"The config is not valid YAML: {_cut(problem, 300)}.")


def _strict(kind, value) -> tuple[bool, object]:
    """(fits, value as the field's type): a whole float is an int, an int a float; nothing
    else converts (no text to numbers, no numbers to booleans)."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind is bool:
        return isinstance(value, bool), value
    if kind is int:
        if number and isinstance(value, float) and value.is_integer():
            return True, int(value)
        return number and isinstance(value, int), value
    if kind is float:
        try:
            converted = float(value) if number else math.nan
        except OverflowError:  # an int beyond any float
            converted = math.nan
        ok = math.isfinite(converted)
        return ok, converted if ok else value
    if kind is str:
        return isinstance(value, str), value
    if kind == str | None:
        return value is None or isinstance(value, str), value
    if kind == dict[str, str]:
        ok = isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        )
        return ok, value
    raise TypeError(f"no strict check for {kind}")  # a new field type needs one


def _cut(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _shown(value) -> str:
    """A value in a message: short, on one line, with its kind."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f"the text {_cut(repr(value))}"
    if isinstance(value, int) and abs(value) > 10**40:
        return "a number far too large"
    if isinstance(value, int | float):
        return _cut(repr(value))
    return {list: "a list", dict: "a mapping"}.get(type(value), f"a {type(value).__name__}")


def _shown_key(key: str) -> str:
    return key if key.isprintable() else repr(key)


def help_text(name: str) -> str:
    """The one-line help of a config field, for widget labels and CLI --help."""
    return next(f.metadata["help"] for f in fields(RunConfig) if f.name == name)
