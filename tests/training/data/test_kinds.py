"""Data kinds beyond plain supervised rows, from the hand-made files in tests/fixtures/data:
preference pairs (DPO/ORPO), KTO labels, images, tool calls (ShareGPT and OpenAI), and
pretty-printed JSON in a .jsonl file."""

import json

import pytest

from tests.conftest import FIXTURES
from training.data import detect_format, load_examples, render_example, validate_file
from training.data.labels import encode_example, explain_example
from training.data.tokens import TokenCounter
from training.data.tools import supports_tools

DATA = FIXTURES / "data"
TOOLS_TEMPLATE = (DATA / "tools_template.jinja").read_text(encoding="utf-8")


def codes(report, level="errors") -> list[str]:
    return [f.code for f in getattr(report, level)]


@pytest.fixture
def tools_tokenizer(tiny_model_dir):
    """The tiny tokenizer with a ChatML template that renders tools (Qwen2.5's conventions)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.chat_template = TOOLS_TEMPLATE
    return tok


# --- preference pairs -----------------------------------------------------------------


@pytest.mark.parametrize(
    "name, columns",
    [
        ("dpo_flat.jsonl", "“chosen” and “rejected”"),
        ("dpo_sharegpt.json", "“chosen” and “rejected”"),
        ("dpo_openai.jsonl", "“preferred_output” and “non_preferred_output”"),
    ],
)
def test_preference_pairs_are_named_once_not_read_as_broken_chats(name, columns):
    report = validate_file(DATA / name)
    assert report.format is None and codes(report) == ["preference_data"]  # one, whole file
    error = report.errors[0]
    assert error.row is None and columns in error.message
    assert "DPO or ORPO" in error.message and "not supported yet" in error.message
    assert "train on the chosen replies" in error.hint and "--format preference" in error.hint
    assert "no_assistant_message" not in report.counts  # the old "194 rows missing a reply"
    assert report.detection["kinds"] == ["preference"]


@pytest.mark.parametrize(
    "name, first",
    [
        (
            "dpo_flat.jsonl",
            [
                {"role": "user", "content": "What is the capital of France?"},
                {"role": "assistant", "content": "The capital of France is Paris."},
            ],
        ),
        (
            "dpo_sharegpt.json",
            [
                {"role": "system", "content": "You answer briefly."},
                {"role": "user", "content": "What is the boiling point of water at sea level?"},
                {"role": "assistant", "content": "100 degrees Celsius (212 degrees Fahrenheit)."},
            ],
        ),
        (
            "dpo_openai.jsonl",
            [
                {
                    "role": "user",
                    "content": "Hello, can you tell me how cold San Francisco is today?",
                },
                {
                    "role": "assistant",
                    "content": "Today in San Francisco it is a mild 14 degrees Celsius.",
                },
            ],
        ),
    ],
)
def test_chosen_replies_train_as_supervised_messages_when_picked(name, first):
    report = validate_file(DATA / name, fmt="preference")
    assert report.ok and report.format == "preference", report.errors
    assert "chosen_replies_only" in codes(report, "warnings")
    examples = load_examples(DATA / name, fmt="preference")
    assert examples[0] == {"messages": first}
    rejected = {"France is a country in Europe.", "It depends on the kettle.", "It is 36."}
    assert not any(m["content"] in rejected for e in examples for m in e["messages"])


def test_multi_turn_sharegpt_prompt_keeps_its_history():
    second = load_examples(DATA / "dpo_sharegpt.json", fmt="preference")[1]["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "user", "assistant"]
    assert second[-1]["content"] == "Vielen Dank."


def test_implicit_prompt_preference_trains_the_chosen_conversation(tmp_path):
    rows = [
        {
            "chosen": [
                {"role": "user", "content": f"Q{i}"},
                {"role": "assistant", "content": f"good {i}"},
            ],
            "rejected": [
                {"role": "user", "content": f"Q{i}"},
                {"role": "assistant", "content": f"bad {i}"},
            ],
        }
        for i in range(3)
    ]
    path = tmp_path / "implicit.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert detect_format(rows).kinds == ["preference"]
    assert load_examples(path, fmt="preference")[2]["messages"][-1]["content"] == "good 2"


# --- KTO labels -----------------------------------------------------------------------


def test_kto_trains_only_the_desirable_rows_and_says_how_many_are_left_out():
    report = validate_file(DATA / "kto.json")
    assert report.ok and report.format == "messages" and "kto" in report.detection["kinds"]
    assert report.detection["mapping"]["label"] == "label"
    assert report.stats["examples"] == 3 and report.counts["undesirable_row"] == 2
    left_out = [f for f in report.warnings if f.code == "undesirable_row"]
    assert [f.row for f in left_out] == [2, 4] and "left out of training" in left_out[0].message
    replies = [e["messages"][-1]["content"] for e in load_examples(DATA / "kto.json")]
    assert replies == [
        "The meeting is now on Friday.",
        "Rain is expected tonight.",
        "The library closes early today.",
    ]


def test_a_kto_label_that_is_not_true_or_false_is_an_error(tmp_path):
    chat = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    tags = [True, "maybe", "false", False, None]
    rows = [{"messages": chat, "kto_tag": tag} for tag in tags]
    path = tmp_path / "kto.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = validate_file(path)
    bad = [f for f in report.errors if f.code == "invalid_label"]
    assert [f.row for f in bad] == [2, 5] and "“kto_tag”" in bad[0].message
    assert "text" in bad[0].message and "empty (null)" in bad[1].message
    assert report.counts["undesirable_row"] == 2 and report.stats["examples"] == 1


# --- images, audio, video -------------------------------------------------------------


def test_image_rows_are_refused_with_the_reason_and_text_rows_pass():
    report = validate_file(DATA / "images.json")
    bad = [f for f in report.errors if f.code == "multimodal_row"]
    assert [f.row for f in bad] == [1, 3] and "text-only models" in bad[0].message
    assert "an image (column “images”)" in bad[0].message
    assert report.stats["examples"] == 1 and report.skippable == 2
    assert "multimodal" in report.detection["kinds"]
    assert [e["messages"][0]["content"] for e in load_examples(DATA / "images.json")] == [
        "What colour is the sky?"
    ]


def test_openai_image_and_audio_parts_are_refused_and_text_parts_joined():
    report = validate_file(DATA / "image_parts.jsonl")
    bad = {f.row: f.message for f in report.errors if f.code == "multimodal_row"}
    assert set(bad) == {1, 3} and "“image_url”" in bad[1] and "“input_audio”" in bad[3]
    assert load_examples(DATA / "image_parts.jsonl")[0]["messages"][0]["content"] == "Say hello."


def test_an_image_placeholder_without_images_is_a_warning(tmp_path):
    chat = [
        {"role": "user", "content": "<image>Describe it."},
        {"role": "assistant", "content": "A cat."},
    ]
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"messages": chat}) + "\n")
    report = validate_file(path)
    assert report.ok and "media_placeholder" in codes(report, "warnings")


# --- tool calls -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, rows", [("sharegpt_tools.json", [2, 3]), ("openai_tools.jsonl", [1, 3])]
)
def test_tool_rows_are_refused_when_the_template_lacks_tools(name, rows, tiny_tokenizer):
    assert not supports_tools(tiny_tokenizer)  # plain ChatML, like SmolLM2's template
    report = validate_file(DATA / name, tokenizer=tiny_tokenizer)
    bad = [f for f in report.errors if f.code == "tools_unsupported"]
    assert [f.row for f in bad] == rows and codes(report) == ["tools_unsupported"] * 2
    assert "does not support tools" in bad[0].message and "Qwen2.5-Instruct" in bad[0].hint
    assert "unknown_role" not in report.counts  # no more "rename function_call"
    assert report.skippable == 2 and report.stats["examples"] == 1


@pytest.mark.parametrize("name", ["sharegpt_tools.json", "openai_tools.jsonl"])
def test_tool_rows_train_with_a_template_that_supports_tools(name, tools_tokenizer):
    assert supports_tools(tools_tokenizer)
    report = validate_file(DATA / name, tokenizer=tools_tokenizer)
    assert report.ok and report.stats["examples"] == 3, report.errors
    counter = TokenCounter(tools_tokenizer)
    for example in load_examples(DATA / name):
        ids = encode_example(tools_tokenizer, example)
        tokens, trained, _, error = counter.count([example], 10_000)[0]
        assert error is None and tokens == len(ids["input_ids"])
        assert trained == sum(label != -100 for label in ids["labels"])


def test_a_tool_call_is_trained_and_its_result_is_context(tools_tokenizer):
    example = load_examples(DATA / "openai_tools.jsonl")[0]
    assert example["tools"][0]["function"]["name"] == "get_weather"
    call = example["messages"][1]
    assert call == {
        "role": "assistant",
        "tool_calls": [
            {
                "type": "function",
                "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
                "id": "call_1",
            }
        ],
        "content": "",
    }
    text = render_example(example, tools_tokenizer)
    assert "<tools>" in text and '"arguments": {"city": "Paris"}' in text
    trained = "".join(t for t, on in explain_example(tools_tokenizer, example) if on)
    assert '<tool_call>{"name": "get_weather"' in trained and "It is 21 degrees" in trained
    assert "temperature" not in trained and "weather in Paris?" not in trained


def test_sharegpt_function_calls_and_observations_become_tool_turns():
    examples = load_examples(DATA / "sharegpt_tools.json")
    assert "tools" not in examples[0]  # "tools": "[]" defines none
    roles = [m["role"] for m in examples[2]["messages"]]
    assert roles == ["user", "assistant", "tool", "tool", "assistant"]
    calls = examples[2]["messages"][1]["tool_calls"]
    assert [c["function"]["arguments"]["to"] for c in calls] == ["EUR", "GBP"]  # parallel
    legacy = load_examples(DATA / "openai_tools.jsonl")[2]["messages"]  # function_call
    assert legacy[1]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": {"city": "Oslo"},
    }
    assert legacy[2] == {"role": "tool", "content": '{"temperature": 3}', "name": "get_weather"}


def test_openai_functions_column_is_read_as_tool_definitions(tmp_path):
    row = json.loads((DATA / "openai_tools.jsonl").read_text().splitlines()[2])
    path = tmp_path / "functions.jsonl"
    path.write_text(json.dumps(row) + "\n")
    assert load_examples(path)[0]["tools"] == [
        {"type": "function", "function": row["functions"][0]}
    ]


def test_a_broken_tool_call_names_its_message(tmp_path):
    turns = [
        {"from": "human", "value": "Add 1 and 2."},
        {"from": "function_call", "value": "{not json"},
        {"from": "gpt", "value": "3"},
    ]
    path = tmp_path / "t.json"
    path.write_text(json.dumps([{"conversations": turns}]))
    report = validate_file(path)
    assert codes(report) == ["bad_tool_call"] and "Message 2" in report.errors[0].message


def test_without_a_model_tool_rows_get_one_warning(tmp_path):
    report = validate_file(DATA / "openai_tools.jsonl")
    assert report.ok and report.counts["tools_unchecked"] == 1
    warning = next(f for f in report.warnings if f.code == "tools_unchecked")
    assert warning.row is None and warning.message.startswith("2 rows")


def test_render_example_refuses_tool_rows_for_a_template_without_tools(tiny_tokenizer):
    example = load_examples(DATA / "openai_tools.jsonl")[0]
    with pytest.raises(ValueError, match="does not support tools"):
        render_example(example, tiny_tokenizer)
    with pytest.raises(ValueError, match="does not support tools"):
        encode_example(tiny_tokenizer, example)


# --- pretty-printed JSON in a .jsonl file ---------------------------------------------


def test_pretty_printed_jsonl_is_read_with_one_file_level_note():
    report = validate_file(DATA / "pretty.jsonl")
    assert report.ok and report.rows == 3 and report.format == "alpaca"
    assert "unparseable_line" not in report.counts
    note = next(f for f in report.warnings if f.code == "pretty_printed_jsonl")
    assert note.row is None and "jq -c" in note.hint
    assert load_examples(DATA / "pretty.jsonl")[2]["messages"][1]["content"] == "Large."


def test_a_broken_pretty_printed_jsonl_is_one_error_not_one_per_line(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text((DATA / "pretty.jsonl").read_text().replace('"Quick."', '"Quick."}'))
    report = validate_file(path)
    assert codes(report) == ["invalid_json"] and "after 2 complete" in report.errors[0].message


def test_true_jsonl_with_one_bad_line_is_still_read_line_by_line(tmp_path):
    path = tmp_path / "lines.jsonl"
    good = json.dumps({"instruction": "a", "output": "b"})
    path.write_text(f"{good}\n{{broken\n{good}\n")
    report = validate_file(path)
    assert [(f.row, f.code) for f in report.errors] == [(2, "unparseable_line")]
