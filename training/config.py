"""Run configuration: one dataclass, YAML in and out, validated on construction.

Defaults follow common practice: AutoTrain's LoRA r16 / alpha 32 / dropout 0.05 on all
linear layers; 3 epochs (OpenAI's target); lr 2e-4, the usual LoRA rate (full fine-tunes
use ~2e-5, adapters need ~10x more); 4 sequences x 2 accumulation = 8 sequences per
optimizer step. `python -m training train config.yaml` reproduces any run from the UI.
"""

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from training.data.report import FORMATS

DEFAULT_MODEL = "bundled/SmolLM2-135M-Instruct"
BACKENDS = ("lora", "autotrain")
METHODS = ("lora", "qlora")
SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup")


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
    # --- LoRA
    lora_r: int = _help("LoRA rank: capacity of the adapter.", default=16)
    lora_alpha: int = _help("LoRA scaling; 2 x rank is the usual choice.", default=32)
    lora_dropout: float = _help("Dropout on the adapter inputs.", default=0.05)
    target_modules: str = _help(
        "Layers to adapt: 'all-linear' or comma-separated names.", default="all-linear"
    )
    # --- schedule
    epochs: float = _help("Passes over the training data.", default=3.0)
    max_steps: int = _help("Stop after this many optimizer steps (-1 = use epochs).", default=-1)
    learning_rate: float = _help("Peak learning rate.", default=2e-4)
    lr_scheduler: str = _help("Learning-rate schedule after warm-up.", default="cosine")
    warmup_ratio: float = _help("Share of steps spent warming the learning rate up.", default=0.03)
    batch_size: int = _help("Sequences per device per step.", default=4)
    grad_accum: int = _help("Steps accumulated per optimizer update.", default=2)
    max_length: int = _help("Longest sequence in tokens; longer rows are truncated.", default=1024)
    # --- evaluation, checkpoints, logging
    eval_steps: int = _help(
        "Evaluate on the validation split every N steps (0 = at the end only).", default=50
    )
    save_steps: int = _help("Write a resumable checkpoint every N steps.", default=50)
    logging_steps: int = _help("Record loss every N steps.", default=5)
    early_stopping_patience: int = _help(
        "Stop after N evaluations without improvement (0 = off).", default=0
    )
    seed: int = _help("Random seed for the split, initialisation and data order.", default=42)

    def __post_init__(self):
        problems = []
        if self.backend not in BACKENDS:
            problems.append(f"backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")
        if self.method not in METHODS:
            problems.append(f"method must be one of {', '.join(METHODS)}, not {self.method!r}")
        if self.format not in (None, "", *FORMATS):
            problems.append(
                f"format must be one of {', '.join(FORMATS)} or empty, not {self.format!r}"
            )
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
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"Unknown config keys: {', '.join(unknown)} (known: {', '.join(sorted(known))})."
            )
        return cls(**data)

    @classmethod
    def from_yaml(cls, path_or_text) -> "RunConfig":
        text = (
            Path(path_or_text).read_text(encoding="utf-8")
            if isinstance(path_or_text, Path)
            else path_or_text
        )
        data = yaml.safe_load(text) or {}
        if not isinstance(data, dict):
            raise ValueError("A config file must be a YAML mapping of key: value lines.")
        return cls.from_dict(data)


def help_text(name: str) -> str:
    """The one-line help of a config field, for widget labels and CLI --help."""
    return next(f.metadata["help"] for f in fields(RunConfig) if f.name == name)
