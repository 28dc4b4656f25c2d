"""Export for OpenAI / Azure OpenAI fine-tuning: their rules as findings with row numbers,
token counts with the offline tiktoken files, OpenAI's epoch rule, billed tokens, and the
`python -m training export-data` contract (JSON fields, exit codes 0/1/2)."""

import dataclasses
import gzip
import hashlib
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import FIXTURES
from training.data import openai_tokens, providers, validate_file
from training.data.openai_tokens import count_example, encoding
from training.data.provider_cli import format_export
from training.data.provider_cli import main as cli_main
from training.data.provider_export import default_out, export_for_provider
from training.data.providers import PROVIDERS, billed_tokens, default_epochs, find_model
from training.data.samples import SAMPLES
from training.paths import REPO_ROOT

DATA = FIXTURES / "data"
TARGETS = list(PROVIDERS)
ROLES = {"system", "user", "assistant", "tool"}


def chat(i: int, answer: str | None = None) -> dict:
    return {
        "messages": [
            {"role": "system", "content": "You answer briefly."},
            {"role": "user", "content": f"Question {i}?"},
            {"role": "assistant", "content": answer or f"Answer {i}."},
        ]
    }


def jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def with_row(tmp_path, bad: dict, position: int = 3, n: int = 12):
    """n good chats with `bad` in the given 1-based row."""
    rows = [chat(i) for i in range(n)]
    rows[position - 1] = bad
    return jsonl(tmp_path / "data.jsonl", rows)


def codes_at(result) -> set[tuple[str, int | None]]:
    return {(f.code, f.row) for f in result.report.errors}


def read_export(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8-sig").splitlines()]


# --- every sample goes to both providers ------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("sample", list(SAMPLES.values()), ids=lambda p: p.name)
def test_every_sample_exports_clean_for_both_targets(tmp_path, sample, target):
    result = export_for_provider(sample, target, out=tmp_path / "out.jsonl")
    assert result.ok and result.exit_code == 0, result.report.errors
    assert result.skipped_count == 0 and result.examples >= PROVIDERS[target].min_examples
    assert result.tokenizer == "tiktoken o200k_base" and not result.tokens_estimated
    raw = result.out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") == (target == "azure")  # Azure asks for a BOM
    assert len(raw) == result.bytes
    records = read_export(result.out)
    assert len(records) == result.examples
    for record in records:
        roles = [m["role"] for m in record["messages"]]
        assert set(roles) <= ROLES and "assistant" in roles
        assert all(m["content"].strip() for m in record["messages"])
    t = result.tokens
    assert t["min"] <= t["mean"] <= t["max"]
    assert result.billed_tokens == result.epochs * t["total"]
    # what was written is itself a clean chat file for the validator
    assert validate_file(result.out).errors == []


def test_sample_figures(tmp_path):
    result = export_for_provider(SAMPLES["JSON answers (chat JSONL)"], "openai", out=tmp_path / "o")
    assert (result.examples, result.epochs) == (107, 3)
    t = result.tokens
    assert (t["total"], t["min"], t["mean"], t["max"]) == (4596, 39, 43.0, 53)
    assert result.billed_tokens == 3 * 4596


def test_default_output_is_beside_the_input_and_never_the_input(tmp_path):
    path = jsonl(tmp_path / "qa.jsonl", [chat(i) for i in range(10)])
    assert default_out(path, "azure") == tmp_path / "qa.azure.jsonl"
    result = export_for_provider(path, "azure")
    assert result.out == tmp_path / "qa.azure.jsonl" and result.ok
    with pytest.raises(ValueError, match="input file itself"):
        export_for_provider(path, "openai", out=path)
    assert len(path.read_text().splitlines()) == 10  # untouched


def test_unknown_target_or_model_is_a_usage_error():
    with pytest.raises(ValueError, match="choose one of"):
        find_model("anthropic")
    with pytest.raises(ValueError, match="gpt-4o-mini-2024-07-18"):
        find_model("azure", "gpt-3.5-turbo-0125")  # Azure spells it gpt-35-turbo
    assert find_model("azure", "gpt-4.1-mini")[1].name == "gpt-4.1-mini-2025-04-14"
    assert find_model("openai", "gpt-3.5-turbo")[1].encoding == "cl100k_base"


# --- each rule gives its finding on the right row --------------------------------------


@pytest.mark.parametrize(
    "bad, code",
    [
        ({"messages": [{"role": "user", "content": "No reply here."}]}, "no_assistant_message"),
        (
            {
                "messages": [
                    {"role": "narrator", "content": "Once upon a time."},
                    {"role": "assistant", "content": "Yes."},
                ]
            },
            "unknown_role",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "  "},
                    {"role": "assistant", "content": "A"},
                ]
            },
            "empty_content",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "cat.png"}}],
                    },
                    {"role": "assistant", "content": "A cat."},
                ]
            },
            "multimodal_row",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "Hi"},
                    {"role": "tool", "content": "{}"},
                    {"role": "assistant", "content": "Done."},
                ]
            },
            "provider_orphan_tool_result",
        ),
    ],
)
@pytest.mark.parametrize("target", TARGETS)
def test_a_broken_row_is_left_out_with_its_finding(tmp_path, bad, code, target):
    result = export_for_provider(with_row(tmp_path, bad, 7), target, out=tmp_path / "o.jsonl")
    assert (code, 7) in codes_at(result)
    assert result.skipped == [{"row": 7, "code": code, "reason": result.skipped[0]["reason"]}]
    assert result.exit_code == 1 and not result.ok
    # the other 11 rows are still written, each valid
    assert result.out is not None and len(read_export(result.out)) == result.examples == 11


def test_too_few_examples_writes_nothing(tmp_path):
    path = jsonl(tmp_path / "few.jsonl", [chat(i) for i in range(9)])
    for target in TARGETS:
        result = export_for_provider(path, target, out=tmp_path / f"{target}.jsonl")
        assert codes_at(result) == {("provider_few_examples", None)}
        assert result.out is None and not (tmp_path / f"{target}.jsonl").exists()
        assert "at least 10" in result.report.errors[0].message
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_an_example_over_the_models_limit_is_left_out(tmp_path):
    long = chat(0, answer="word " * 17_000)  # ~17,000 tokens: over 16,385, under 65,536
    path = with_row(tmp_path, long, position=5)
    small = export_for_provider(path, "openai", "gpt-3.5-turbo", out=tmp_path / "a.jsonl")
    assert codes_at(small) == {("provider_too_long", 5)}
    assert "16,385" in small.report.errors[0].message and small.examples == 11
    assert small.tokenizer == "tiktoken cl100k_base"
    big = export_for_provider(path, "openai", "gpt-4o-mini", out=tmp_path / "b.jsonl")
    assert big.ok and big.tokens["max"] > 16_385


def test_preference_pairs_are_refused_as_tunesmith_refuses_them(tmp_path):
    result = export_for_provider(DATA / "dpo_flat.jsonl", "openai", out=tmp_path / "o.jsonl")
    assert codes_at(result) == {("preference_data", None)} and result.out is None
    pairs = (DATA / "dpo_flat.jsonl").read_text().splitlines() * 3
    (tmp_path / "pairs.jsonl").write_text("\n".join(pairs) + "\n")
    chosen = export_for_provider(
        tmp_path / "pairs.jsonl", "openai", fmt="preference", out=tmp_path / "c.jsonl"
    )  # trained on the chosen replies, when the user asks for that
    assert chosen.ok and "chosen_replies_only" in chosen.report.counts
    assert (
        read_export(chosen.out)[0]["messages"][-1]["content"] == "The capital of France is Paris."
    )


def test_images_are_refused_per_row(tmp_path):
    result = export_for_provider(DATA / "images.json", "azure", out=tmp_path / "o.jsonl")
    rows = {f.row for f in result.report.errors if f.code == "multimodal_row"}
    assert rows and rows == {s["row"] for s in result.skipped if s["code"] == "multimodal_row"}


def test_plain_text_cannot_go_to_a_chat_fine_tune(tmp_path):
    path = jsonl(tmp_path / "t.jsonl", [{"text": f"Line {i}."} for i in range(20)])
    result = export_for_provider(path, "openai", out=tmp_path / "o.jsonl")
    assert codes_at(result) == {("provider_plain_text", None)} and result.out is None


def test_tool_calls_leave_in_openai_form(tmp_path):
    rows = json.loads((DATA / "sharegpt_tools.json").read_text())
    path = tmp_path / "tools.json"
    path.write_text(json.dumps(rows * 4))
    result = export_for_provider(path, "openai", out=tmp_path / "o.jsonl")
    assert result.ok, result.report.errors
    record = read_export(result.out)[2]
    call_turn, first, second = record["messages"][1:4]
    assert "content" not in call_turn  # no empty content beside the calls
    calls = call_turn["tool_calls"]
    assert [c["id"] for c in calls] == ["call_1", "call_2"] and calls[0]["type"] == "function"
    assert json.loads(calls[1]["function"]["arguments"]) == {"amount": 100, "to": "GBP"}
    assert (first["tool_call_id"], second["tool_call_id"]) == ("call_1", "call_2")
    assert record["tools"][0]["function"]["name"] == "convert"


def test_weights_stay_on_assistant_turns_only(tmp_path):
    bad = chat(0)
    bad["messages"][1]["weight"] = 0
    bad["messages"][2]["weight"] = 1
    result = export_for_provider(with_row(tmp_path, bad, 2), "openai", out=tmp_path / "o.jsonl")
    assert result.ok and result.report.counts["provider_weight_dropped"] == 1
    user, assistant = read_export(result.out)[1]["messages"][1:]
    assert "weight" not in user and assistant["weight"] == 1


def test_column_mapping_and_formats_as_validation_reads_them(tmp_path):
    path = tmp_path / "qa.csv"
    path.write_text("q,a\n" + "".join(f"Question {i}?,Answer {i}.\n" for i in range(12)))
    result = export_for_provider(
        path, "azure", mapping={"prompt": "q", "completion": "a"}, out=tmp_path / "o.jsonl"
    )
    assert result.ok and result.report.format == "prompt_completion"
    assert read_export(result.out)[0]["messages"][1]["content"] == "Answer 0."


def test_file_size_and_job_limits(tmp_path, monkeypatch):
    path = jsonl(tmp_path / "d.jsonl", [chat(i) for i in range(12)])
    tight = dataclasses.replace(PROVIDERS["azure"], max_file_bytes=100, max_job_tokens=50)
    monkeypatch.setitem(PROVIDERS, "azure", tight)
    result = export_for_provider(path, "azure", out=tmp_path / "o.jsonl")
    assert codes_at(result) == {("provider_file_too_large", None), ("provider_job_too_large", None)}
    assert result.out is None


# --- tokens, epochs, billing -------------------------------------------------------------


def test_offline_encodings_equal_tiktokens_own(tmp_path, monkeypatch):
    """Our Encoding (files from the wheel, split pattern copied) is tiktoken's, built by
    tiktoken_ext itself from the same file placed in its cache, so never downloaded."""
    from tiktoken_ext import openai_public

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    for name in openai_tokens.ENCODINGS:
        url = f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
        data = gzip.decompress(openai_tokens.encoding_file(name).read_bytes())
        (tmp_path / hashlib.sha1(url.encode()).hexdigest()).write_bytes(data)
        spec = getattr(openai_public, name)()
        ours = encoding(name)
        assert ours._pat_str == spec["pat_str"] and ours._special_tokens == spec["special_tokens"]
        assert ours._mergeable_ranks == spec["mergeable_ranks"]


def test_counts_follow_the_cookbook():
    enc = encoding("o200k_base")
    example = chat(1)
    expected = 3 + sum(
        3 + len(enc.encode(m["role"])) + len(enc.encode(m["content"])) for m in example["messages"]
    )
    assert count_example(example, enc) == expected
    named = {"messages": [{"role": "user", "name": "ann", "content": "hi"}]}
    n = sum(len(enc.encode(text)) for text in ("user", "ann", "hi"))
    assert count_example(named, enc) == 3 + 3 + n + 1  # 1 more for the name
    # special-token text in data is plain text, never an error
    assert count_example({"messages": [{"role": "user", "content": "<|endoftext|>"}]}, enc) > 7


def test_without_the_encoding_files_counts_are_labelled_estimates(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(openai_tokens, "encoding_file", lambda name: None)
    encoding.cache_clear()
    try:
        path = jsonl(tmp_path / "d.jsonl", [chat(i) for i in range(12)])
        result = export_for_provider(path, "openai", out=tmp_path / "o.jsonl")
        out = result.to_json()
        assert out["tokens_estimated"] and "not available offline" in out["tokenizer"]
        assert "provider_tokens_estimated" in out["counts"] and result.ok  # a warning only
        assert "(estimated)" in format_export(result, str(path))
    finally:
        encoding.cache_clear()


@pytest.mark.parametrize(
    "n, epochs",
    [(1, 25), (5, 20), (30, 3), (33, 3), (34, 3), (40, 3), (100, 3), (8333, 3), (8334, 2)]
    + [(10_000, 2), (12_501, 1), (25_001, 1), (0, 3)],
)
def test_openai_default_epochs(n, epochs):
    assert default_epochs(n) == epochs


def test_billed_tokens_cap_each_example_at_the_limit():
    assert billed_tokens([10, 20, 70_000], 65_536, 2) == 2 * (10 + 20 + 65_536)
    assert billed_tokens([], 16_385, 3) == 0


# --- the command line ------------------------------------------------------------------


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "training", "export-data", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ},
        timeout=120,
    )


def test_cli_json_contract_and_exit_0(tmp_path):
    out = tmp_path / "x.jsonl"
    p = run(SAMPLES["Unit conversions (prompt/completion CSV)"], "--target", "azure", "--out", out)
    assert p.returncode == 0, p.stderr
    assert "Result: ready for Azure OpenAI fine-tuning." in p.stdout and out.exists()
    p = run(
        SAMPLES["Unit conversions (prompt/completion CSV)"],
        *("--target", "openai", "--model", "gpt-4.1-mini", "--out", out, "--json"),
    )
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)  # exactly one JSON object
    assert {
        "target",
        "model",
        "out",
        "examples",
        "skipped",
        "errors",
        "warnings",
        "tokens",
        "tokenizer",
        "epochs",
        "billed_tokens",
        "ok",
    } <= got.keys()
    assert (got["target"], got["model"], got["ok"]) == ("openai", "gpt-4.1-mini-2025-04-14", True)
    assert got["out"] == str(out) and got["examples"] == 84 and got["skipped"] == []
    assert {"total", "min", "mean", "max"} <= set(got["tokens"])
    assert got["billed_tokens"] == got["epochs"] * got["tokens"]["total"]


def test_cli_exit_1_lists_rows_left_out(tmp_path, capsys):
    bad = {"messages": [{"role": "user", "content": "No reply."}]}
    path = with_row(tmp_path, bad, 4)
    assert cli_main([str(path), "--target", "openai", "--json"]) == 1
    got = json.loads(capsys.readouterr().out)
    assert got["skipped"][0]["row"] == 4 and got["skipped"][0]["code"] == "no_assistant_message"
    assert {"row": 4, "code": "no_assistant_message"}.items() <= got["errors"][0].items()
    assert cli_main([str(tmp_path / "missing.jsonl"), "--target", "azure"]) == 1
    text = capsys.readouterr().out
    assert "does not exist" in text and "Nothing was written" in text


def test_cli_usage_errors_exit_2_without_traceback(tmp_path):
    path = jsonl(tmp_path / "d.jsonl", [chat(i) for i in range(10)])
    for args in (
        [path],  # no --target
        [path, "--target", "gcp"],
        [path, "--target", "openai", "--model", "gpt-2"],
        [path, "--target", "openai", "--out", path],
    ):
        p = run(*args)
        assert p.returncode == 2, (args, p.stdout, p.stderr)
        assert "Traceback" not in p.stderr and p.stderr.strip()


def test_the_command_never_imports_torch(tmp_path):
    code = (
        "import sys; from training.__main__ import main; "
        "main(['export-data', 'samples/json_answers.jsonl', '--target', 'openai', '--json',"
        " '--out', sys.argv[1]]); assert 'torch' not in sys.modules, 'torch imported'"
    )
    p = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "x.jsonl")],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr


def test_epoch_rule_constants_are_the_cookbooks():
    assert (providers.TARGET_EPOCHS, providers.MIN_TARGET_EXAMPLES) == (3, 100)
    assert (providers.MAX_TARGET_EXAMPLES, providers.MAX_DEFAULT_EPOCHS) == (25_000, 25)


def test_an_output_that_cannot_be_written_is_a_finding(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    sample = SAMPLES["JSON answers (chat JSONL)"]
    result = export_for_provider(sample, "openai", out=tmp_path / "file" / "o.jsonl")
    assert codes_at(result) == {("output_not_written", None)} and result.exit_code == 1
