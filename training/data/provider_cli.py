"""`python -m training export-data FILE --target openai|azure`: chat JSONL for OpenAI's or
Azure OpenAI's fine-tuning, checked against their rules.

    python -m training export-data data.jsonl --target openai             # -> data.openai.jsonl
    python -m training export-data qa.csv --target azure --model gpt-4.1-mini --json
    python -m training export-data qa.csv --target openai --map q=prompt --map a=completion

Exit status: 0 the file written is ready for the provider as it is, 1 it is not (rows were
left out, or no usable file could be written; the report says why), 2 a usage error (an
unknown model, an output that is the input). Whatever the data, this prints a report,
never a Python traceback; with --json, exactly one JSON object.
"""

import argparse
import json
import os
import sys

from .cli import FIELDS, finding_lines, parse_mapping
from .provider_export import ProviderExport, export_for_provider
from .providers import MB, PROVIDERS
from .report import FORMATS


def _parser() -> argparse.ArgumentParser:
    models = "; ".join(
        f"{key}: {', '.join(m.name for m in p.models)}" for key, p in PROVIDERS.items()
    )
    p = argparse.ArgumentParser(
        prog="python -m training export-data",
        description="Export a data set as chat JSONL for OpenAI or Azure OpenAI fine-tuning.",
    )
    p.add_argument("file", help="the data file (JSONL, JSON, CSV, TSV, Parquet, TXT)")
    p.add_argument("--target", required=True, choices=list(PROVIDERS), help="the provider")
    p.add_argument(
        "--model", help=f"the base model to check against (default gpt-4o-mini); {models}"
    )
    p.add_argument("--out", help="the JSONL to write (default: FILE's name + .TARGET.jsonl)")
    p.add_argument("--json", action="store_true", help="print one JSON object and nothing else")
    p.add_argument("--format", choices=FORMATS, help="skip detection and read the file as this")
    p.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="COLUMN=FIELD",
        help=f"use COLUMN as FIELD ({', '.join(FIELDS)}); repeat as needed",
    )
    return p


def format_export(result: ProviderExport, path: str) -> str:
    """The readable report: what was exported, the findings grouped by problem, the figures."""
    provider = PROVIDERS[result.target]
    report = result.report
    lines = [f"Export of {path} for {provider.label} fine-tuning, model {result.model}"]
    if report.format:
        lines.append(f"Format: {report.format}. {report.detection.get('reason', '')}".rstrip())
    lines.append(
        f"Rows read: {report.rows:,}; exported: {result.examples:,}; "
        f"left out: {result.skipped_count:,}."
    )
    if result.examples:
        lines.append(
            f"Token counts: {result.tokenizer}."
            if result.tokens_estimated
            else f"Token counts: exact, with {result.tokenizer}, plus OpenAI's cookbook overhead "
            "(3 per message, 3 per example)."
        )
    lines += finding_lines(
        report,
        "ERRORS (their rows are left out of the file; an error about the whole file means none is written)",
        "WARNINGS (the export goes ahead)",
    )
    t = result.tokens
    if result.examples:
        estimated = " (estimated)" if result.tokens_estimated else ""
        lines += [
            "",
            "FIGURES:",
            f"  tokens per example{estimated}: min {t['min']:,}, mean {t['mean']:,}, "
            f"max {t['max']:,} (limit {result.token_limit:,})",
            f"  total tokens{estimated}: {t['total']:,}",
            f"  default epochs (OpenAI's rule for {result.examples:,} examples): {result.epochs}",
            f"  billed training tokens{estimated}: {result.epochs} x {t['total']:,} = "
            f"{result.billed_tokens:,}",
        ]
    lines.append("")
    if result.out:
        bom = " (UTF-8 with a byte-order mark, as Azure asks)" if provider.bom else ""
        size = (
            f"{result.bytes / MB:,.1f} MB"
            if result.bytes >= MB
            else f"{result.bytes / 1024:,.0f} KB"
        )
        lines.append(f"Wrote {result.out}{bom}: {result.examples:,} examples, {size}.")
    else:
        lines.append("Nothing was written.")
    if result.ok:
        lines.append(f"Result: ready for {provider.label} fine-tuning.")
    elif result.out:
        lines.append(
            f"Result: NOT ready as it stands: {result.skipped_count:,} rows were left out "
            "(see above); the file written holds the rest."
        )
    else:
        lines.append("Result: NOT usable yet: fix the errors above.")
    return "\n".join(lines)


def _run(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    mapping = parse_mapping(args.map, parser)
    try:
        result = export_for_provider(
            args.file, args.target, args.model, args.format, mapping or None, args.out
        )
    except ValueError as e:  # an unknown model, an output that is the input
        print(f"export-data: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False, default=str))
    else:
        print(format_export(result, args.file))
    return result.exit_code


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return _run(argv)
    except BrokenPipeError:  # `... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except SystemExit as e:  # argparse: usage errors (2) and --help (0)
        return e.code if isinstance(e.code, int) else 2
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 1
    except Exception as e:  # a bug must still end with a sentence, not a traceback
        print(f"export-data failed unexpectedly: {type(e).__name__}: {e}", file=sys.stderr)
        if "--json" in argv:  # the contract still holds: one JSON object on stdout
            print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}))
        return 1


if __name__ == "__main__":
    sys.exit(main())
