"""Command line: `python -m training COMMAND ...`.

    python -m training validate data.jsonl --json          # check a dataset
    python -m training export-data data.csv --target openai # chat JSONL for OpenAI / Azure
    python -m training models                              # list the model catalogue
    python -m training train configs/cpu-demo.yaml         # run a fine-tune (a worker process)
    python -m training submit cfg.yaml --flavor t4-small   # the same run on Hugging Face Jobs
    python -m training eval RUN_DIR --json                 # before/after evaluation
    python -m training export RUN_DIR --merged --json      # adapter zip, merged model, Hub push

Each command lives in its own module with a `main(argv) -> exit code`; this file only
dispatches, so `python -m training validate` never imports torch.
"""

import importlib
import os
import sys

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

COMMANDS = {
    "validate": ("training.data.cli", "check a dataset and print its validation report"),
    "export-data": (
        "training.data.provider_cli",
        "chat JSONL for OpenAI or Azure OpenAI fine-tuning, checked against their rules",
    ),
    "models": (
        "training.models.catalogue",
        "list the model catalogue; --prepare converts the bundled model",
    ),
    "train": (
        "training.jobs.worker",
        "run one fine-tune in this process (the app starts it as a worker)",
    ),
    "submit": (
        "training.jobs.submit",
        "run one fine-tune on Hugging Face Jobs, followed here; the adapter comes back",
    ),
    "eval": (
        "training.evaluation.evaluate",
        "compare base, tuned and few-shot base on held-out rows",
    ),
    "export": (
        "training.export.export",
        "adapter zip, merged model, push to the Hub with a model card",
    ),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print("usage: python -m training COMMAND [options]\n\ncommands:", file=sys.stderr)
        for name, (_, text) in COMMANDS.items():
            print(f"  {name:<12} {text}", file=sys.stderr)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
