"""The Data tab: its handlers called directly, then the launched app through gradio_client.

The tiny ChatML model folder stands in for the selected model (a local folder is a valid
model choice), so no test here needs the bundled SmolLM2.
"""

import copy
import json
import logging
import re
import shutil
import socket
from pathlib import Path

import pytest

from components import data_tab as dt
from tests.app_server import launched_app
from tests.conftest import FIXTURES
from training.data import SAMPLES, DataChoice
from training.settings import Settings

SCRIPT = "<script>alert('pwned')</script><img src=x onerror=alert(1)> ${1+1} {{7*7}}"


def no_progress(*args, **kwargs):
    pass


def chat(user: str, answer: str) -> str:
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    return json.dumps({"messages": messages})


@pytest.fixture
def bad_jsonl(tmp_path):
    """60 chat rows; row 2 carries a <script>, row 3 is broken JSON."""
    lines = [chat(f"Question {i}?", f"Answer {i}.") for i in range(60)]
    lines[1] = chat(SCRIPT, "Plain answer.")
    lines[2] = '{"messages": [{"role": "user", "content": "unfinished"'
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def allowed(tiny_model_dir) -> Settings:
    """Settings under which the tiny model's folder may be chosen (TUNESMITH_MODEL_DIRS)."""
    return Settings(model_dirs=str(tiny_model_dir.parent))


def run(handler, *args, **kwargs) -> dt.View:
    """Drive a generator handler to its last update; check every update has all outputs."""
    views = list(handler(*args, progress=no_progress, **kwargs))
    assert views and all(len(v) == len(dt.View._fields) for v in views)
    return dt.View(*views[-1])


def test_upload_reports_the_bad_row_and_escapes_user_content(bad_jsonl, tiny_model_dir, allowed):
    view = run(
        dt.on_upload, str(bad_jsonl), None, 1024, str(tiny_model_dir), False, settings=allowed
    )
    assert "Fix 1 error first" in view.verdict
    assert 'data-code="unparseable_line"' in view.report and "row 3" in view.report
    assert "not valid JSON" in view.report and "How to fix" in view.report
    assert "Question 0?" in view.preview and "Question 4?" in view.preview
    for html in view:  # no output carries live markup from the data
        assert "<script>" not in str(html) and "<img" not in str(html)
    assert "&lt;script&gt;" in view.preview
    choice = view.choice
    assert isinstance(choice, DataChoice) and choice.ok is False
    assert choice.summary.errors == 1 and choice.format == "messages"
    assert copy.deepcopy(choice) == choice  # it can sit in a gr.State


def test_first_update_shows_the_preview_before_the_check_finishes(bad_jsonl, tiny_model_dir):
    updates = dt.on_upload(
        str(bad_jsonl), None, 1024, str(tiny_model_dir), False, progress=no_progress
    )
    first = dt.View(*next(updates))
    assert "Checking" in first.verdict and "Question 0?" in first.preview and first.report == ""


@pytest.mark.parametrize("name", list(SAMPLES))
def test_every_sample_is_ready_to_train(name, tiny_model_dir, allowed):
    view = run(dt.on_sample, name, 1024, str(tiny_model_dir), False, settings=allowed)
    assert "Ready to train" in view.verdict, view.report
    choice = view.choice
    assert choice.ok and choice.path == str(SAMPLES[name]) and choice.mapping
    stats = choice.summary.stats
    assert stats["examples"] >= 50 and stats["total_training_tokens"] > 0
    assert stats["token_estimate"] is False  # counted with the tiny model's tokenizer
    assert "<svg" in view.histogram and "max length 1,024" in view.histogram
    assert "Examples" in view.stats and "&lt;|im_start|&gt;" in view.conversation


def test_row_view_uses_the_chat_template_and_escapes(bad_jsonl, tiny_model_dir, allowed):
    sel = dt.choose(bad_jsonl)
    html = dt.show_row(sel, 2, str(tiny_model_dir), False, allowed)
    assert '<span class="ts-special">&lt;|im_end|&gt;</span>' in html
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in html
    assert "<script>" not in html and "<img" not in html
    broken = dt.show_row(sel, 3, str(tiny_model_dir), False, allowed)
    assert "Row 3 cannot be used" in broken and "not valid JSON" in broken
    assert "There is no row 999" in dt.show_row(sel, 999, str(tiny_model_dir), False)


def test_format_override_and_column_mapping(tmp_path, tiny_model_dir, allowed):
    path = tmp_path / "qa.csv"
    rows = ["frage,antwort"] + [f"Was ist {i} plus {i}?,{2 * i}" for i in range(60)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    model = str(tiny_model_dir)
    view = run(dt.on_upload, str(path), None, 1024, model, False, settings=allowed)
    assert not view.choice.ok and view.options == {"__type__": "update", "open": True}
    view = run(dt.on_format, view.choice, "prompt_completion", 1024, model, False, settings=allowed)
    assert view.roles == ["prompt", "completion", "system"]
    assert view.slot1["choices"] == [("(none)", ""), ("frage", "frage"), ("antwort", "antwort")]
    view = run(
        dt.on_options,
        view.choice,
        "prompt_completion",
        view.roles,
        "frage",
        "antwort",
        "",
        None,
        None,
        1024,
        model,
        False,
        settings=allowed,
    )
    assert "Ready to train: 60 examples" in view.verdict, view.report
    assert view.choice.mapping == {"prompt": "frage", "completion": "antwort"}
    assert view.choice.format == "prompt_completion" and view.choice.ok


def test_max_length_marks_long_rows(tmp_path, tiny_model_dir, allowed):
    path = tmp_path / "long.jsonl"
    lines = [
        chat(f"Story {i}. " + "Tell me a story. " * (40 if i % 3 == 0 else 1), "Once.")
        for i in range(60)
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    view = run(dt.on_upload, str(path), None, 64, str(tiny_model_dir), False, settings=allowed)
    assert 'data-code="over_max_length"' in view.report and "rows 1, 4, 7," in view.report
    assert "ts-bar-over" in view.histogram and "max length 64" in view.histogram
    stats = view.choice.summary.stats
    assert stats["max_length"] == 64 and stats["over_max_length"] == 20


def test_validation_file_and_its_rows(bad_jsonl, tmp_path, tiny_model_dir, allowed):
    val = tmp_path / "val.jsonl"
    val.write_text(chat("Valid?", "Yes.") + "\nnot json\n", encoding="utf-8")
    model = str(tiny_model_dir)
    view = run(dt.on_upload, str(bad_jsonl), str(val), 1024, model, False, settings=allowed)
    assert view.choice.validation_file == str(val)
    assert view.choice.summary.stats["split"]["source"] == "file"
    assert "validation file row 2" in view.report


def test_unavailable_model_falls_back_to_estimates(bad_jsonl):
    view = run(dt.on_upload, str(bad_jsonl), None, 1024, "someone/not-here", False)
    assert 'data-code="model_unavailable"' in view.report and "estimates" in view.report
    assert view.choice.summary.stats["token_estimate"] is True
    assert "ChatML layout" in view.conversation


def test_size_cap_is_a_plain_message(bad_jsonl, tiny_model_dir):
    view = run(dt.on_upload, str(bad_jsonl), None, 1024, str(tiny_model_dir), False, max_bytes=1024)
    assert 'data-code="file_too_large"' in view.report and "limit here is" in view.report


def test_a_crash_shows_a_plain_message_and_logs_the_traceback(
    monkeypatch, caplog, bad_jsonl, tiny_model_dir
):
    def boom(*args, **kwargs):
        raise RuntimeError("internal detail")

    monkeypatch.setattr(dt, "validate_file", boom)
    handler = dt.safe(dt.on_upload, "checking the file", dt.blank_view)
    with caplog.at_level(logging.ERROR):
        views = [
            dt.View(*v) for v in handler(str(bad_jsonl), None, 1024, str(tiny_model_dir), False)
        ]
    assert "went wrong on our side" in views[-1].verdict
    assert "internal detail" not in views[-1].verdict and "Traceback" not in views[-1].verdict
    assert "RuntimeError: internal detail" in caplog.text  # the traceback is in the log


DATA = FIXTURES / "data"


def visible_text(html: str) -> str:
    """What a reader sees: the text outside tags (attributes such as data-code excluded)."""
    return re.sub(r"<[^>]+>", " ", html)


def test_rows_with_errors_can_be_skipped_by_an_explicit_choice(tiny_model_dir, allowed):
    path = str(DATA / "rows300_2bad.jsonl")
    view = run(dt.on_upload, path, None, 1024, str(tiny_model_dir), False, settings=allowed)
    assert not view.choice.ok and view.choice.skip_bad_rows is False  # never by default
    assert view.skip["visible"] is True and view.skip["value"] is False
    assert view.skip["label"].startswith("Skip the 2 rows with errors and train on the other 298")
    assert "Fix 2 errors first, then check again, or tick “Skip”" in view.verdict
    assert "Rows with errors (left out if you skip them)" in view.stats
    assert "held out from the data" in view.stats and "source" not in visible_text(view.stats)
    verdict, choice = dt.on_skip(view.choice, True)
    assert choice.ok and choice.skip_bad_rows and choice.run_fields()["skip_bad_rows"] is True
    assert "Ready to train on 298 examples" in verdict and "2 rows with errors" in verdict
    args = (choice, "auto", view.roles, "", "", "", "", None, 512, str(tiny_model_dir), False)
    again = run(dt.on_options, *args, settings=allowed)  # a recheck keeps the tick
    assert again.choice.skip_bad_rows and again.choice.ok and again.skip["value"] is True
    verdict, choice = dt.on_skip(choice, False)
    assert not choice.ok and "Fix 2 errors first" in verdict
    fresh = run(dt.on_upload, path, None, 1024, str(tiny_model_dir), False, settings=allowed)
    assert fresh.choice.skip_bad_rows is False  # a new file starts unticked


def test_no_skip_box_when_the_file_is_fine_or_broken_as_a_whole(bad_jsonl, tiny_model_dir, allowed):
    ok = run(dt.on_sample, next(iter(SAMPLES)), 1024, str(tiny_model_dir), False, settings=allowed)
    assert ok.skip["visible"] is False
    path = str(DATA / "dpo_flat.jsonl")
    whole = run(dt.on_upload, path, None, 1024, str(tiny_model_dir), False, settings=allowed)
    assert whole.skip["visible"] is False and not whole.choice.ok


def test_preference_pairs_are_named_and_the_chosen_replies_can_be_picked(tiny_model_dir, allowed):
    model, path = str(tiny_model_dir), str(DATA / "dpo_sharegpt.json")
    view = run(dt.on_upload, path, None, 1024, model, False, settings=allowed)
    assert "preference pairs" in view.detection and "DPO or ORPO" in view.detection
    assert view.options == {"__type__": "update", "open": True}
    assert "missing" not in visible_text(view.report)  # not 3 rows "missing a reply"
    assert "not supported yet" in view.report and not view.choice.ok
    assert (
        "Preference pairs: train on the chosen replies (DPO/ORPO not supported yet)",
        "preference",
    ) in dt.FORMAT_CHOICES
    view = run(dt.on_format, view.choice, "preference", 1024, model, False, settings=allowed)
    assert view.choice.ok and view.choice.format == "preference", view.report
    assert view.roles == ["chosen", "prompt", "input", "system"]
    assert view.choice.mapping["prompt"] == "conversations"
    assert "Only the chosen replies are trained" in view.report
    assert "Vielen Dank" in dt.show_row(view.choice, 2, model, False, allowed)


def test_grouped_findings_state_no_one_rows_facts_and_no_codes(tmp_path, tiny_model_dir, allowed):
    lines = [chat(f"Question {i}?", f"Answer {i}.") for i in range(60)]
    lines[3] = lines[4] = lines[0]  # copies of row 1
    lines[9] = lines[7]  # a copy of row 8
    lines[20], lines[30] = "not json {", '{"messages": ['  # each broken its own way
    path = tmp_path / "dups.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    view = run(dt.on_upload, str(path), None, 1024, str(tiny_model_dir), False, settings=allowed)
    summary = re.search(r'data-code="duplicate_row"><summary>(.*?)</summary>', view.report)[1]
    assert "3×" in summary and "exact copies of earlier rows" in summary
    assert "row 1" not in visible_text(summary) and "row 8" not in visible_text(summary)
    assert "row 4</b>: This example is an exact copy of row 1." in view.report  # each row's own
    assert "row 10</b>: This example is an exact copy of row 8." in view.report
    assert "These lines are not valid JSON." in view.report
    shown = visible_text(view.report + view.verdict + view.detection + view.preview)
    for code in ("duplicate_row", "unparseable_line", "no_system_message", "code:"):
        assert code not in shown


def tools_model(tiny_model_dir, tmp_path) -> tuple[str, Settings]:
    """The tiny model with a chat template that renders tools, in a folder of its own."""
    folder = tmp_path / "models" / "tiny-tools"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "chat_template.jinja").write_text((DATA / "tools_template.jinja").read_text())
    return str(folder), Settings(model_dirs=str(folder.parent))


def test_tool_calls_train_with_a_tools_template_and_are_refused_without(
    tiny_model_dir, allowed, tmp_path
):
    path = str(DATA / "sharegpt_tools.json")
    view = run(dt.on_upload, path, None, 1024, str(tiny_model_dir), False, settings=allowed)
    assert 'data-code="tools_unsupported"' in view.report and "Qwen2.5-Instruct" in view.report
    assert "rename" not in view.report.lower()
    refused = dt.show_row(view.choice, 2, str(tiny_model_dir), False, allowed)
    assert "Row 2 cannot be used" in refused and "does not support tools" in refused
    model, settings = tools_model(tiny_model_dir, tmp_path)
    view = run(dt.on_upload, path, None, 1024, model, False, settings=settings)
    assert "Ready to train: 3 examples" in view.verdict, view.report
    assert "&lt;tool_call&gt;" in dt.show_row(view.choice, 2, model, False, settings)


def test_a_recheck_with_no_file_yet_changes_nothing_and_one_with_a_file_keeps_the_row(
    tiny_model_dir, allowed
):
    import gradio as gr

    view = run(dt.on_options, dt.choose(None), "auto", [], "", "", "", "", None, 1024, None, False)
    assert list(view) == [gr.skip()] * len(dt.View._fields)  # e.g. a model set on page load
    model = str(tiny_model_dir)
    first = run(dt.on_sample, next(iter(SAMPLES)), 1024, model, False, settings=allowed)
    args = (first.choice, "auto", first.roles, "", "", "", "", None, 512, model, False, 3)
    view = run(dt.on_options, *args, settings=allowed)
    assert view.row == 3 and view.conversation.count("Row 3 ") == 1


# --- the launched app, through gradio_client ------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def launched(allowed):
    with launched_app(allowed) as url:
        yield url


def test_client_uploads_a_file_and_reads_the_report(launched, bad_jsonl, tiny_model_dir):
    from gradio_client import Client, handle_file

    client = Client(launched, verbose=False)
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {"/upload", "/try_sample", "/set_format", "/recheck", "/show_row"} <= api.keys()
    assert "/skip_bad_rows" in api
    model = str(tiny_model_dir)
    out = client.predict(handle_file(str(bad_jsonl)), None, 1024, model, False, api_name="/upload")
    verdict, report, stats, histogram, preview = out[:5]
    assert "Fix 1 error first" in verdict and "row 3" in report and "not valid JSON" in report
    assert "<svg" in histogram and "Examples" in stats and "Question 0?" in preview
    # The session's selection lives on the server: the row view reads the uploaded file.
    row = client.predict(2, str(tiny_model_dir), False, api_name="/show_row")
    assert "&lt;script&gt;" in row and "<script>" not in row


def test_client_tries_a_sample(launched, tiny_model_dir):
    from gradio_client import Client

    client = Client(launched, verbose=False)
    sample = next(iter(SAMPLES))
    out = client.predict(sample, 1024, str(tiny_model_dir), False, api_name="/try_sample")
    assert "Ready to train" in out[0] and "No problems found" in out[1]


# --- the model picker -----------------------------------------------------------------


def test_picker_shows_unavailable_models_with_the_reason():
    from components import model_picker as mp
    from training.models.catalogue import ModelEntry

    hub_id = "Qwen/Qwen2.5-0.5B-Instruct"
    offline = "offline mode (HF_HUB_OFFLINE) is on"
    hub = ModelEntry(hub_id, f"{hub_id} (Hub)", "hub", False, offline, "494M", True)
    assert mp.choice_label(hub).endswith("(unavailable: offline mode (HF_HUB_OFFLINE) is on)")
    assert mp.model_note(hub.key, [hub]).startswith("⚠️ **Qwen/Qwen2.5-0.5B-Instruct** cannot")
    assert mp.model_note("my/own-model", [hub]).startswith("Custom model")


def test_picker_starts_on_the_settings_model_folder(tiny_model_dir):
    import gradio as gr

    from components import model_picker as mp
    from training.settings import Settings

    with gr.Blocks():
        chosen = mp.build_model_picker(Settings(default_model=str(tiny_model_dir)))
        default = mp.build_model_picker(Settings())
    assert chosen.model.value == str(tiny_model_dir)
    entry = next(e for e in mp.catalogue(str(tiny_model_dir)) if e.source == "local")
    assert entry.key == str(tiny_model_dir) and entry.available
    assert default.model.value == "bundled/SmolLM2-135M-Instruct"


def test_app_builds_without_importing_torch():
    import subprocess
    import sys

    from training.paths import REPO_ROOT

    code = "import sys, app; app.build_app(); print('torch' in sys.modules, 'transformers' in sys.modules)"

    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "False"]


def test_other_server_paths_and_remote_code_are_refused_before_loading(bad_jsonl, tiny_model_dir):
    """Any folder outside the owner's model folders (here the tiny model's, without
    TUNESMITH_MODEL_DIRS) is refused with one message, whether it exists or not."""
    views = [
        run(dt.on_upload, str(bad_jsonl), None, 1024, model, False)
        for model in (str(tiny_model_dir), str(tiny_model_dir / "no-such-model"))
    ]
    for view in views:
        assert "Only models from the list" in view.report
        assert view.choice.summary.stats["token_estimate"] is True  # nothing loaded
        assert "not a model folder" not in view.report and "ChatML layout" in view.conversation
    allowed = Settings(model_dirs=str(tiny_model_dir.parent))
    view = run(
        dt.on_upload, str(bad_jsonl), None, 1024, str(tiny_model_dir), True, settings=allowed
    )
    assert "owner has not allowed" in view.report


def test_remote_code_box_is_off_unless_the_owner_allows_it_outside_a_space():
    import gradio as gr

    from components import model_picker as mp

    with gr.Blocks():
        off = mp.build_model_picker(Settings()).trust_remote_code
        on = mp.build_model_picker(Settings(allow_remote_code=True)).trust_remote_code
        space = Settings(allow_remote_code=True, space_id="owner/space")
        in_space = mp.build_model_picker(space).trust_remote_code
    assert off.interactive is False and "owner has not allowed" in off.info
    assert on.interactive is True and "Only for models you trust" in on.info
    assert in_space.interactive is False and "public Space" in in_space.info


def test_picker_lists_the_owners_model_folders_and_refuses_other_paths(tiny_model_dir):
    from components import model_picker as mp

    owner = Settings(model_dirs=str(tiny_model_dir.parent))
    keys = {e.key for e in mp.catalogue("", owner)}
    assert str(tiny_model_dir.resolve()) in keys
    assert str(tiny_model_dir.resolve()) not in {e.key for e in mp.catalogue("", Settings())}
    refused = mp.on_model_change(str(tiny_model_dir), Settings())
    assert refused.startswith("⚠️ Only models from the list")
    assert mp.on_model_change("/no/such/folder", Settings()) == refused
    assert "local folder" in mp.on_model_change(str(tiny_model_dir), owner)


def test_a_reload_brings_back_the_checked_dataset_and_refuses_a_forged_one(
    tiny_model_dir, allowed, monkeypatch, tmp_path
):
    upload_root = tmp_path / "gradio"
    (upload_root / "f00d").mkdir(parents=True)
    monkeypatch.setattr(dt, "get_upload_folder", lambda: str(upload_root))
    data = upload_root / "f00d" / "chats.jsonl"
    data.write_text("".join(chat(f"Q{i}?", f"A{i}.") + "\n" for i in range(30)))
    model = str(tiny_model_dir)
    first = run(dt.on_upload, str(data), None, 1024, model, False, settings=allowed)
    kept = dt.on_keep(first.choice, settings=allowed)
    assert "f00d/chats.jsonl" in json.dumps(kept) and str(tmp_path) not in json.dumps(kept)

    def restore(memo, now=None):
        handler = dt.on_restore(
            memo, now, 1024, model, False, progress=no_progress, settings=allowed
        )
        outs = list(handler)
        assert all(len(o) == 2 + len(dt.View._fields) for o in outs)
        return outs[-1][:2], dt.View(*outs[-1][2:])

    (shown_file, _), view = restore(json.loads(json.dumps(kept)))
    assert shown_file == str(data.resolve())  # the file box shows the upload again
    assert view.choice.ok and view.choice.path == str(data.resolve())
    assert view.verdict == first.verdict and view.preview == first.preview

    sample = run(dt.on_sample, next(iter(SAMPLES)), 1024, model, False, settings=allowed)
    (_, picker), view = restore(dt.on_keep(sample.choice, settings=allowed))
    assert picker["value"] == next(iter(SAMPLES)) and view.choice.ok

    import gradio as gr

    nothing = [gr.skip()] * len(dt.View._fields)
    forged = {**kept, "data": ["sample", "../README.md"]}
    assert list(restore(forged)[1]) == nothing  # refused: the page stays as it is
    assert list(restore(kept, now=sample.choice)[1]) == nothing  # the visitor picked already


def test_the_checked_data_goes_to_openai_or_azure_as_chat_jsonl(tiny_model_dir, allowed):
    model = str(tiny_model_dir)
    nothing, said = dt.on_provider_export(DataChoice(), "openai", None)
    assert nothing is None and "Check a dataset" in said
    sample = run(
        dt.on_sample, "Pirate explanations (Alpaca JSON)", 1024, model, False, settings=allowed
    )
    path, html = dt.on_provider_export(sample.choice, "azure", "gpt-4o-mini-2024-07-18")
    assert path.endswith(".azure.jsonl") and "Ready for Azure OpenAI fine-tuning" in html
    assert "Billed training tokens" in html and "o200k_base" in html
    first = json.loads(Path(path).read_text("utf-8-sig").splitlines()[0])
    assert [m["role"] for m in first["messages"]][-1] == "assistant"
    assert str(Path(path).parent).startswith(str(Path(dt.get_upload_folder())))  # downloadable
    _, refused = dt.on_provider_export(sample.choice, "openai", "not-a-model")
    assert "not-a-model" in refused and "<script" not in refused
    assert dt.provider_models("azure")["value"]


def test_a_few_bad_rows_are_listed_and_the_file_is_written_without_them(
    tmp_path, tiny_model_dir, allowed
):
    lines = [chat(f"Q{i}?", f"A{i}.") for i in range(20)]
    lines[4] = json.dumps({"messages": [{"role": "user", "content": SCRIPT}]})  # no reply
    data = tmp_path / "few_bad.jsonl"
    data.write_text("\n".join(lines) + "\n")
    view = run(dt.on_upload, str(data), None, 1024, str(tiny_model_dir), False, settings=allowed)
    path, html = dt.on_provider_export(view.choice, "openai", None)
    assert path and len(Path(path).read_text().splitlines()) == 19
    assert "row 5" in html and "<script>" not in html
