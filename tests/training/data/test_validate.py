"""Every validation check, its level, code and row; statistics; streaming limits."""

import json

import pytest

from training.data import validate_file
from training.data.stats import recommended_epochs, summary, validation_count


def chat(q="Q", a="A", system=None) -> dict:
    m = [{"role": "system", "content": system}] if system else []
    return {"messages": m + [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}


def write(tmp_path, rows, name="data.jsonl"):
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def found(report, level=None) -> set:
    items = report.errors + report.warnings if level is None else getattr(report, level + "s")
    return {(f.code, f.row) for f in items}


def test_openai_recipe_checks_each_at_its_row(tmp_path):
    good = [chat(f"q{i}", f"a{i}", system="S") for i in range(8)]
    bad = [
        [1, 2],  # 9 not_an_object
        {"messages": []},  # 10 missing_messages
        {"messages": [{"content": "x"}, {"role": "assistant", "content": "y"}]},  # 11 no role
        {
            "messages": [
                {"role": "user", "content": "x", "mood": "happy"},
                {"role": "assistant", "content": "y"},
            ]
        },  # 12 unknown keys
        {"messages": [{"role": "bot", "content": "x"}]},  # 13 unknown role
        {"messages": [{"role": "user", "content": 7}, {"role": "assistant", "content": "y"}]},  # 14
        {"messages": [{"role": "user", "content": "only a question"}]},  # 15 no assistant
        {"messages": [{"role": "assistant", "content": "hello"}]},  # 16 no user, no system
        "{not json",  # 17 unparseable
        {
            "messages": [{"role": "user", "content": "   "}, {"role": "assistant", "content": "y"}]
        },  # 18
        {"messages": ["hi", {"role": "assistant", "content": "y"}]},  # 19 message not object
        {
            "messages": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "content": "y", "weight": 2},
            ]
        },
    ]
    report = validate_file(write(tmp_path, good + bad))
    assert report.format == "messages" and report.rows == 20
    assert {
        ("not_an_object", 9),
        ("missing_messages", 10),
        ("message_missing_key", 11),
        ("unknown_message_keys", 12),
        ("unknown_role", 13),
        ("content_not_text", 14),
        ("no_assistant_message", 15),
        ("unparseable_line", 17),
        ("empty_content", 18),
        ("message_not_object", 19),
        ("invalid_weight", 20),
    } <= found(report, "error")
    assert {("no_user_message", 16), ("no_system_message", 16)} <= found(report, "warning")
    assert ("no_system_message", 1) not in found(report)
    assert report.stats["examples"] == 9  # 8 good rows + row 16 (warnings only)
    assert report.exit_code == 1
    for f in report.errors + report.warnings:
        assert f.message and f.hint and f.level in ("error", "warning")


def test_conversation_shape_warnings(tmp_path):
    u, a, s = ({"role": r, "content": r[0]} for r in ("user", "assistant", "system"))
    rows = [
        {"messages": [u, u, a]},  # 1 two user turns in a row
        {"messages": [u, a, a]},  # 2 two assistant turns in a row
        {"messages": [u, a, u]},  # 3 ends with the user
        {"messages": [u, s, a]},  # 4 system not first
        {"messages": [u, {**a, "weight": 0}, u, {**a, "weight": 0}]},  # 5 nothing trained
    ]
    report = validate_file(write(tmp_path, rows))
    assert {
        ("consecutive_user_turns", 1),
        ("consecutive_assistant_turns", 2),
        ("last_turn_not_assistant", 3),
        ("system_not_first", 4),
        ("zero_trained_tokens", 5),
    } <= found(report, "warning")
    assert not report.errors


def test_duplicates_point_at_the_original_row(tmp_path):
    rows = [
        chat("a", "1"),
        chat("b", "2"),
        chat("a", "1"),
        chat("c", "3"),
        chat("a", "1"),
        chat("b", "2"),
    ]
    report = validate_file(write(tmp_path, rows))
    dups = [(f.row, f.message) for f in report.warnings if f.code == "duplicate_row"]
    assert [r for r, _ in dups] == [3, 5, 6]
    assert "row 1" in dups[0][1] and "row 1" in dups[1][1] and "row 2" in dups[2][1]


def test_dataset_level_warnings(tmp_path):
    report = validate_file(write(tmp_path, [chat(f"q{i}") for i in range(30)]))
    assert ("few_examples", None) in found(report, "warning")
    assert report.stats["split"] == {"train": 27, "validation": 3, "source": "split"}
    assert ("small_validation_split", None) in found(report, "warning")
    report = validate_file(write(tmp_path, [chat(f"q{i}", system="S") for i in range(60)]))
    assert not report.warnings and report.exit_code == 0


def test_nothing_to_train_is_an_error(tmp_path):
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"q{i}"},
                {"role": "assistant", "content": "a", "weight": 0},
            ]
        }
        for i in range(3)
    ]
    report = validate_file(write(tmp_path, rows))
    assert ("nothing_to_train", None) in found(report, "error")


def test_file_level_problems_and_exit_codes(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n\n")
    report = validate_file(tmp_path / "empty.jsonl")
    assert ("empty_file", None) in found(report, "error") and report.exit_code == 1
    report = validate_file(write(tmp_path, [{"foo": 1}, {"foo": 2}]))
    assert ("unknown_format", None) in found(report, "error") and report.exit_code == 1
    report = validate_file(write(tmp_path, [chat()]), mapping={"prompt": "nope", "completion": "x"})
    assert "missing_column" in report.counts and report.exit_code == 1
    report = validate_file(tmp_path / "nope.jsonl")
    assert report.exit_code == 2 and not report.readable
    report = validate_file(write(tmp_path, ["{bad", "[also bad"]))
    assert report.exit_code == 2 and report.counts["unparseable_line"] == 2
    report = validate_file(write(tmp_path, [chat()] * 100), max_bytes=500)
    assert report.exit_code == 2 and "file_too_large" in report.counts


def test_ambiguous_format_warns(tmp_path):
    report = validate_file(write(tmp_path, [{**chat(), "text": "t"}]))
    assert report.format == "messages" and "ambiguous_format" in report.counts
    assert report.detection["candidates"] == ["messages", "text"]


def test_csv_rows_and_utf8_warning(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b'prompt,completion\n"\xc3\xa0\nb",c\nonly\ncaf\xe9,d\n,e\n')  # UTF-8, damaged
    report = validate_file(path)
    assert {("bad_csv_row", 2), ("empty_content", 4)} <= found(report, "error")
    assert ("invalid_utf8", 3) in found(report, "warning")


def test_findings_are_capped_but_counted(tmp_path):
    report = validate_file(write(tmp_path, [chat()] * 5 + ["{"] * 1200))
    assert report.counts["unparseable_line"] == 1200
    assert sum(f.code == "unparseable_line" for f in report.errors) == 1000


def test_statistics_without_tokenizer_are_estimates(tmp_path):
    rows = [chat("x" * 40, "y" * 80), chat("x" * 4, "y" * 8, system="S")]
    s = validate_file(write(tmp_path, rows)).stats
    assert s["token_estimate"] is True and s["tokenizer"] is None
    assert s["messages_per_example"] == {
        "min": 2,
        "mean": 2.5,
        "median": 2.5,
        "p10": 2.1,
        "p90": 2.9,
        "max": 3,
    }
    assert s["tokens_per_example"]["max"] == 4 + 11 + 4 + 21  # headers + ~chars/4 + end marks
    assert sum(s["histogram"]["counts"]) == 2 and s["histogram"]["edges"][0] == 0
    assert s["max_length"] == 1024 and s["recommended_epochs"] == 25


def test_exact_token_counts_match_the_tokenizer(tmp_path, tiny_tokenizer):
    rows = [
        chat(
            "What is the capital of France? " * (i % 5 + 1),
            "Paris. " * (i % 7 + 1),
            system="Be brief." if i % 2 else None,
        )
        for i in range(40)
    ]
    report = validate_file(write(tmp_path, rows), tokenizer=tiny_tokenizer, max_length=50)
    lengths = [
        len(tiny_tokenizer.apply_chat_template(r["messages"], return_dict=False)) for r in rows
    ]
    s = report.stats
    assert s["token_estimate"] is False
    assert s["tokens_per_example"] == summary(lengths)
    assert s["total_training_tokens"] == sum(min(n, 50) for n in lengths)
    assert s["over_max_length"] == sum(n > 50 for n in lengths)
    assert report.counts.get("over_max_length", 0) == s["over_max_length"] > 0


def test_assistant_tokens_are_what_training_trains(tmp_path, tiny_tokenizer):
    from training.data.labels import encode_example

    rows = [
        chat("Tell me something. " * (i + 1), "Here it is: " * (i % 4 + 1), system="S")
        for i in range(12)
    ]
    rows.append(
        {
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b", "weight": 0},
                {"role": "user", "content": "c"},
                {"role": "assistant", "content": "d d d"},
            ]
        }
    )
    report = validate_file(write(tmp_path, rows), tokenizer=tiny_tokenizer)
    trained = [sum(x != -100 for x in encode_example(tiny_tokenizer, r)["labels"]) for r in rows]
    assert report.stats["assistant_tokens_per_example"] == summary(trained)


def test_truncation_warnings(tmp_path, tiny_tokenizer):
    rows = [chat("short", "long answer " * 40), chat("long question " * 40, "short")] + [
        chat(f"q{i}") for i in range(3)
    ]
    report = validate_file(write(tmp_path, rows), tokenizer=tiny_tokenizer, max_length=40)
    assert {("over_max_length", 1), ("over_max_length", 2), ("assistant_truncated", 2)} <= found(
        report, "warning"
    )
    assert ("assistant_truncated", 1) not in found(report)


def test_template_errors_and_missing_template(tmp_path, tiny_model_dir):
    from transformers import AutoTokenizer

    strict = AutoTokenizer.from_pretrained(tiny_model_dir)
    strict.chat_template = (
        "{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}"
        "{{ m['role'] + ': ' + m['content'] + '\n' }}{% endfor %}"
    )
    u, a = {"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}
    report = validate_file(write(tmp_path, [chat(), {"messages": [u, u, a]}]), tokenizer=strict)
    assert ("template_error", 2) in found(report, "error")
    assert "alternate" in next(f.message for f in report.errors if f.code == "template_error")
    bare = AutoTokenizer.from_pretrained(tiny_model_dir)
    bare.chat_template = None
    report = validate_file(write(tmp_path, [chat()]), tokenizer=bare)
    assert "no_chat_template" in report.counts and report.stats["tokens_per_example"]["max"] > 0


def test_validation_file(tmp_path):
    train = write(tmp_path, [chat(f"q{i}") for i in range(60)], "train.jsonl")
    val = write(tmp_path, [chat("v1"), {"messages": []}], "val.jsonl")
    report = validate_file(train, validation_file=val)
    assert report.stats["split"] == {"train": 60, "validation": 1, "source": "file"}
    bad = [f for f in report.errors if f.code == "missing_messages"]
    assert bad[0].row == 2 and bad[0].file == "validation" and "validation file" in bad[0].message
    assert bad[0].to_json()["file"] == "validation"


def test_progress_is_reported(tmp_path):
    seen = []
    validate_file(
        write(tmp_path, [chat(f"q{i}") for i in range(2500)]),
        progress=lambda f, m: seen.append((f, m)),
    )
    fractions = [f for f, _ in seen]
    assert len(seen) >= 3 and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert "2,500 rows" in seen[-1][1]
    validate_file(write(tmp_path, [chat()]), progress=lambda f, m: 1 / 0)  # a broken bar is ignored


def test_never_raises(tmp_path, monkeypatch):
    monkeypatch.setattr("training.data.validate._validate", lambda *a: 1 / 0)
    report = validate_file(tmp_path / "x.jsonl")
    assert report.exit_code == 2 and "ZeroDivisionError" in report.errors[0].message


def test_json_contract_shape(tmp_path):
    out = validate_file(write(tmp_path, [chat(), "{"])).to_json()
    assert {"format", "rows", "errors", "warnings", "stats"} <= out.keys()
    assert set(out["errors"][0]) == {"row", "code", "message", "hint"}
    json.dumps(out)


@pytest.mark.parametrize(
    ("n", "epochs"),
    [(1, 25), (10, 25), (33, 12), (81, 6), (200, 3), (8333, 3), (9000, 2), (30000, 1)],
)
def test_recommended_epochs_are_the_train_tabs_rule(n, epochs):
    """At least 60 updates at 4 x 2 for a small set (at most 25 passes), OpenAI's 3 passes
    otherwise, at most 25,000 examples seen (training/recipe.py)."""
    assert recommended_epochs(n) == epochs


def test_validation_count():
    assert [validation_count(n, 0.1) for n in (0, 1, 2, 9, 10, 15, 100)] == [0, 0, 1, 1, 1, 2, 10]
    assert validation_count(100, 0) == 0


def test_values_quoted_in_messages_are_cut_short(tmp_path):
    role = "r" * 500_000  # 1,000 of these would have kept 500 MB of messages
    report = validate_file(write(tmp_path, [{"messages": [{"role": role, "content": "x"}]}]))
    [finding] = [f for f in report.errors if f.code == "unknown_role"]
    assert len(finding.message) < 500 and "rrr…" in finding.message
