"""`python -m training validate FILE`: check a data set from the command line.

    python -m training validate data.jsonl                      # readable report
    python -m training validate data.csv --json                 # one JSON object on stdout
    python -m training validate data.jsonl --model SmolLM2-135M-Instruct --max-length 512
    python -m training validate qa.csv --map question_col=prompt --map answer_col=completion
    python -m training validate hub:OWNER/NAME[:CONFIG][@REVISION] [--split S]  # Hub dataset

Exit status: 0 the data is usable for training, 1 it has errors, 2 it cannot be read.
Whatever the input, this prints a report, never a Python traceback.
"""

import argparse
import contextlib
import json
import os
import sys

from .codes import DataError, Findings, group_text
from .hub import as_ref, open_split
from .report import FORMATS, ValidationReport
from .validate import error_report, validate_file

FIELDS = (
    "messages",
    "conversations",
    "instruction",
    "input",
    "output",
    "prompt",
    "completion",
    "text",
    "system",
    "chosen",
    "tools",
    "label",
)


def load_tokenizer(name: str):
    """The one place the CLI gets a tokenizer: through the model catalogue, which knows
    the bundled model and local folders (plain transformers if the catalogue is missing)."""
    try:
        from training.models.catalogue import load_tokenizer as from_catalogue
    except ImportError:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(name)
    return from_catalogue(name)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training validate",
        description="Check a fine-tuning data set (JSONL, JSON, CSV, TSV, Parquet, TXT).",
    )
    p.add_argument(
        "file", help="the data file, or a Hub dataset: hub:OWNER/NAME[:CONFIG][@REVISION]"
    )
    p.add_argument("--split", help="the Hub dataset's split (default: train)")
    p.add_argument("--model", help="count tokens with this model's tokenizer and chat template")
    p.add_argument("--max-length", type=int, default=1024, help="token limit per example")
    p.add_argument("--json", action="store_true", help="print one JSON object and nothing else")
    p.add_argument("--format", choices=FORMATS, help="skip detection and read the file as this")
    p.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="COLUMN=FIELD",
        help=f"use COLUMN as FIELD ({', '.join(FIELDS)}); repeat as needed",
    )
    p.add_argument("--validation-file", help="held-out examples instead of an automatic split")
    p.add_argument("--validation-split", type=float, default=0.1, help="fraction held out")
    p.add_argument("--seed", type=int, default=42, help="seed of the automatic split")
    return p


def parse_mapping(pairs: list[str], parser) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        column, sep, field = pair.rpartition("=")
        if not sep or not column or field not in FIELDS:
            parser.error(f"--map expects COLUMN=FIELD with FIELD one of {', '.join(FIELDS)}")
        mapping[field] = column
    return mapping


def _rows(findings: list, limit: int = 12) -> str:
    rows = [str(f.row) for f in findings if f.row is not None]
    more = f" … (+{len(rows) - limit} more)" if len(rows) > limit else ""
    return ", ".join(rows[:limit]) + more


def _summary(name: str, s: dict) -> str:
    return (
        f"  {name:<28} min {s['min']:<6} mean {s['mean']:<8} median {s['median']:<8} "
        f"p10 {s['p10']:<8} p90 {s['p90']:<8} max {s['max']}"
    )


def finding_lines(report: ValidationReport, errors_title: str, warnings_title: str) -> list[str]:
    """The findings grouped by problem, errors first: code, rows, a few messages, the fix."""
    lines = []
    for level, title in (("error", errors_title), ("warning", warnings_title)):
        groups = [g for g in report.groups() if g["level"] == level]
        if groups:
            lines += ["", f"{title}:"]
        for g in groups:
            found = g["findings"]
            n = g["count"]
            where = f"{n:,} row{'s' * (n != 1)}" if found[0].row is not None else "whole file"
            summary, hint = group_text(g["code"], found, n)
            lines.append(f"  [{g['code']}] {where}: {summary}")
            for f in found[:3]:
                lines.append(
                    f"    {'row ' + str(f.row) + ': ' if f.row is not None else ''}{f.message}"
                )
            if len(found) > 3:
                lines.append(f"    also rows: {_rows(found[3:])}")
            lines.append(f"    fix: {hint}")
    return lines


def format_report(report: ValidationReport, path: str) -> str:
    """The readable report: what was found, grouped by problem, with rows and fixes."""
    s, lines = report.stats, [f"Checked {path}"]
    if report.format:
        lines.append(f"Format: {report.format}. {report.detection.get('reason', '')}".rstrip())
    if s:
        split = s["split"]
        how = "validation file" if split["source"] == "file" else "automatic split"
        lines.append(
            f"Rows read: {report.rows:,}; usable examples: {s['examples']:,} "
            f"(train {split['train']:,} / validation {split['validation']:,}, {how})."
        )
        lines.append(
            "Token counts: estimated at about 4 characters per token (no --model given; "
            "pass --model for exact counts)."
            if s["token_estimate"]
            else f"Token counts: exact, with the tokenizer and chat template of {s['tokenizer']}."
        )
    lines += finding_lines(
        report,
        "ERRORS (training is blocked until they are fixed)",
        "WARNINGS (training can go ahead)",
    )
    if s and s["examples"]:
        lines += [
            "",
            "STATISTICS:",
            _summary("messages per example", s["messages_per_example"]),
            _summary("tokens per example", s["tokens_per_example"]),
            _summary("assistant tokens per example", s["assistant_tokens_per_example"]),
            f"  examples over max length ({s['max_length']:,}): {s['over_max_length']:,}",
            f"  total training tokens per epoch: {s['total_training_tokens']:,}",
            f"  recommended epochs: {s['recommended_epochs']}",
        ]
    verdict = {
        0: "Result: usable for training.",
        1: "Result: NOT usable yet: fix the errors above.",
        2: "Result: the file could not be read.",
    }[report.exit_code]
    return "\n".join([*lines, "", verdict])


def _run(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    mapping = parse_mapping(args.map, parser)
    extra = Findings()
    data = name = args.file
    try:  # a Hub dataset, read with this process's credentials (HF_TOKEN, `hf auth login`)
        ref = as_ref(args.file, args.split)
        if ref is None and args.split:
            parser.error("--split is for Hugging Face Hub datasets (hub:OWNER/NAME)")
        if ref is not None:
            with contextlib.redirect_stdout(sys.stderr):
                data = open_split(ref)
            name = str(data)  # pinned: configuration, split and commit named
    except DataError as e:  # nothing to read: the report is the Hub's answer
        return _print(error_report(e), args, name)
    tokenizer = None
    # anything a library prints while loading goes to stderr: stdout is for the report only
    with contextlib.redirect_stdout(sys.stderr):
        if args.model:
            try:
                tokenizer = load_tokenizer(args.model)
            except Exception as e:
                detail = (str(e).splitlines() or [type(e).__name__])[0][:300]
                extra.add("model_unavailable", model=args.model, detail=detail)
        report = validate_file(
            data,
            tokenizer=tokenizer,
            max_length=args.max_length,
            fmt=args.format,
            mapping=mapping or None,
            validation_file=args.validation_file,
            validation_split=args.validation_split,
            seed=args.seed,
        )
        report.warnings = extra.warnings + report.warnings
        report.counts = {**extra.counts, **report.counts}
    return _print(report, args, name)


def _print(report: ValidationReport, args, name: str) -> int:
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False, default=str))
    else:
        print(format_report(report, name))
    return report.exit_code


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return _run(argv)
    except BrokenPipeError:  # `... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 2
    except SystemExit as e:  # argparse: usage errors (2) and --help (0)
        return e.code if isinstance(e.code, int) else 2
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 2
    except Exception as e:  # a bug must still end with a sentence, not a traceback
        print(f"validate failed unexpectedly: {type(e).__name__}: {e}", file=sys.stderr)
        if "--json" in argv:  # the contract still holds: one JSON object on stdout
            findings = Findings()
            findings.add("unreadable_file", detail=f"unexpected problem ({type(e).__name__})")
            report = findings.into(ValidationReport(format=None, rows=0, readable=False))
            print(json.dumps(report.to_json()))
        return 2


if __name__ == "__main__":
    sys.exit(main())
