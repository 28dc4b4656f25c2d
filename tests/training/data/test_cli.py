"""`python -m training validate`: the JSON contract, exit codes, and no traceback ever."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from training.data.cli import main
from training.paths import REPO_ROOT

ROOT = REPO_ROOT
CHAT = {
    "messages": [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "A"},
    ]
}


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "training", "validate", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ},
        timeout=120,
    )


def cli(capsys, *args) -> tuple[int, str]:
    """The same command in this process (faster): exit code and stdout."""
    code = main([str(a) for a in args])
    return code, capsys.readouterr().out


def jsonl(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def contract(stdout: str) -> dict:
    out = json.loads(stdout)  # exactly one JSON object and nothing else
    assert {"format", "rows", "errors", "warnings", "stats"} <= out.keys()
    formats = ("messages", "sharegpt", "alpaca", "prompt_completion", "text", "preference")
    assert out["format"] in (None, *formats)  # "preference" only when asked for
    for f in out["errors"] + out["warnings"]:
        assert {"row", "code", "message", "hint"} <= f.keys()
    return out


def test_usable_file_exits_0(tmp_path):
    rows = [
        {**CHAT, "messages": [*CHAT["messages"][:2], {"role": "assistant", "content": f"A{i}"}]}
        for i in range(60)
    ]
    p = run(jsonl(tmp_path / "ok.jsonl", rows), "--json")
    assert p.returncode == 0, p.stderr
    out = contract(p.stdout)
    assert out["format"] == "messages" and out["rows"] == 60 and out["errors"] == []
    assert out["stats"]["token_estimate"] is True


def test_errors_exit_1_with_rows(tmp_path):
    p = run(jsonl(tmp_path / "bad.jsonl", [CHAT, "{oops", {"messages": []}]), "--json")
    assert p.returncode == 1
    out = contract(p.stdout)
    assert {(e["code"], e["row"]) for e in out["errors"]} >= {
        ("unparseable_line", 2),
        ("missing_messages", 3),
    }


def test_garbage_never_gives_a_traceback(tmp_path):
    path = tmp_path / "garbage.jsonl"
    path.write_bytes(bytes(range(256)) * 64)
    for args in ((path, "--json"), (path,)):
        p = run(*args)
        assert "Traceback" not in p.stderr + p.stdout and p.returncode == 2
    assert contract(run(path, "--json").stdout)["errors"][0]["code"] == "binary_file"


@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe\xfa" * 5000, b"", b"\x80abc\n{]}\n\xc3(", b"[" * 100000, b"{" + b'"a":' * 50000],
)
def test_odd_bytes_give_a_report(tmp_path, capsys, content):
    for name in ("x.jsonl", "x.json", "x.csv", "x.txt", "x.parquet"):
        (tmp_path / name).write_bytes(content)
        code, out = cli(capsys, tmp_path / name, "--json")
        assert code in (0, 1, 2)  # a one-column CSV or TXT of odd text is still text
        contract(out)


def test_unreadable_exits_2(tmp_path):
    p = run(tmp_path / "missing.csv", "--json")
    assert p.returncode == 2 and contract(p.stdout)["errors"][0]["code"] == "file_not_found"
    (tmp_path / "junk.bin").write_bytes(bytes(range(256)) * 10)
    assert run(tmp_path / "junk.bin").returncode == 2


def test_readable_report_groups_problems_with_rows_and_hints(tmp_path):
    p = run(
        jsonl(
            tmp_path / "bad.jsonl",
            [CHAT, "{oops", "[1", {"messages": [{"role": "bot", "content": "x"}]}],
        )
    )
    assert p.returncode == 1
    text = p.stdout
    assert (
        "ERRORS" in text
        and "[unparseable_line] 2 rows" in text
        and "row 2:" in text
        and "row 3:" in text
    )
    assert "fix:" in text and "estimated" in text and "--model" in text
    assert "NOT usable" in text


def test_map_and_format_options(tmp_path, capsys):
    path = tmp_path / "qa.csv"
    path.write_text("q_col,a_col\nWhy?,Because.\n")
    assert cli(capsys, path, "--json")[0] == 1  # unknown format
    code, out = cli(capsys, path, "--json", "--map", "q_col=prompt", "--map", "a_col=completion")
    assert contract(out)["format"] == "prompt_completion" and not contract(out)["errors"]
    code, out = cli(capsys, path, "--json", "--format", "text", "--map", "q_col=text")
    assert contract(out)["format"] == "text"


def test_usage_errors_exit_2_without_traceback(tmp_path, capsys):
    assert main(["x.jsonl", "--map", "nonsense"]) == 2
    assert main([]) == 2
    assert main(["--help"]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "COLUMN=FIELD" in captured.err


def test_model_tokenizer_counts_exactly(tmp_path, tiny_model_dir, capsys):
    path = jsonl(tmp_path / "ok.jsonl", [CHAT] * 3)
    p = run(path, "--json", "--model", tiny_model_dir, "--max-length", "8")
    out = contract(p.stdout)
    assert out["stats"]["token_estimate"] is False and out["stats"]["max_length"] == 8
    assert out["stats"]["over_max_length"] == 3
    out = contract(cli(capsys, path, "--json", "--model", tmp_path / "no-such-model")[1])
    assert "model_unavailable" in {w["code"] for w in out["warnings"]}
    assert out["stats"]["token_estimate"] is True


def test_validation_file_option(tmp_path, capsys):
    train = jsonl(tmp_path / "t.jsonl", [CHAT] * 3)
    val = jsonl(tmp_path / "v.jsonl", [CHAT])
    out = contract(cli(capsys, train, "--json", "--validation-file", val)[1])
    assert out["stats"]["split"] == {"train": 3, "validation": 1, "source": "file"}


def test_preference_pairs_keep_the_json_contract(capsys):
    data = REPO_ROOT / "tests" / "fixtures" / "data" / "dpo_flat.jsonl"
    code, out = cli(capsys, data, "--json")
    report = contract(out)
    assert code == 1 and [e["code"] for e in report["errors"]] == ["preference_data"]
    assert report["detection"]["kinds"] == ["preference"]
    code, out = cli(capsys, data, "--json", "--format", "preference")
    assert code == 0 and contract(out)["format"] == "preference"
    code, out = cli(capsys, data, "--json", "--map", "chosen=chosen", "--map", "prompt=prompt")
    assert code == 0 and contract(out)["format"] == "preference"


def test_readable_report_states_a_groups_summary_not_one_rows_facts(tmp_path, capsys):
    rows = [CHAT, {"messages": [{"role": "user", "content": "q"}, {"role": "bot", "content": "x"}]}]
    rows += [{"messages": [{"role": "user", "content": "q"}, {"role": "robot", "content": "x"}]}]
    code, text = cli(capsys, jsonl(tmp_path / "roles.jsonl", rows))
    assert "[unknown_role] 2 rows: A message has a role the trainer does not know." in text
    assert (
        "row 2: Message 2 has the role “bot”" in text
        and "row 3: Message 2 has the role “robot”" in text
    )
