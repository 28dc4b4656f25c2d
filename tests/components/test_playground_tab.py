"""Playground tab: both columns stream through gradio_client against a launched Blocks,
model output is shown as text (never HTML), regenerate / history helpers."""

import socket
from pathlib import Path

import gradio as gr
import pytest

from components import playground_tab as pg
from components import run_picker
from tests.assets import make_run
from training.chat import engine as chat
from training.chat.engine import ChatEngine
from training.chat.generation import message_text
from training.jobs import runs
from training.paths import runs_dir

EVIL = "<script>alert(1)</script><img src=x onerror=alert(2)>"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_display_escapes_html_from_models_and_data():
    shown = pg.display(
        [{"role": "user", "content": EVIL}, {"role": "assistant", "content": "a & b"}]
    )
    assert "<script" not in shown[0]["content"] and "<img" not in shown[0]["content"]
    assert shown[0]["content"].startswith("&lt;script&gt;") and shown[1]["content"] == "a &amp; b"


class FakeEngine:
    """Streams a fixed reply per row, so the tab's wiring is tested without a model."""

    def __init__(self, replies):
        self.replies, self.calls = replies, []

    def stream(self, base_model, rows, settings, tokenizer_dir=None):
        self.calls.append((base_model, rows, settings))
        for i, text in enumerate(self.replies[: len(rows)]):
            for piece in (text[: len(text) // 2], text[len(text) // 2 :]):
                yield chat.Event(i, piece)
            yield chat.Event(i, "", True, chat.ReplyStats(5, 7, 0.5))


def test_respond_escapes_model_output_in_chat_boxes(tiny_model_dir):
    engine = FakeEngine([EVIL, EVIL])
    run = make_run(runs_dir() / "evil", tiny_model_dir)
    updates = list(
        pg.respond(engine, EVIL, {}, str(run), "final", "", False, 3, 0.7, 0.9, 64, 0, "")
    )
    history, _, base_box, tuned_box, few_box, retrieved_box, base_stats, *_ = updates[-1]
    assert history["base"][-1] == {"role": "assistant", "content": EVIL}  # raw kept for the model
    for box in (base_box, tuned_box):
        assert all("<img" not in m["content"] and "<script" not in m["content"] for m in box)
    assert few_box == retrieved_box == [] and "prompt 5 tokens" in base_stats
    # What gradio sends to the page for that box: still escaped text.
    sent = gr.Chatbot(sanitize_html=True, render_markdown=False).postprocess(tuned_box)
    assert "<img" not in str(sent) and "&lt;img" in str(sent)


def test_each_column_says_generating_until_its_reply_is_complete(tiny_model_dir):
    engine = FakeEngine(["base reply", "tuned reply"])
    run = make_run(runs_dir() / "r", tiny_model_dir)
    settings = (str(run), "final", "", False, 3, 0.7, 0.9, 64, 0, "")
    updates = list(pg.respond(engine, "hi", {}, *settings))
    stats = [u[6:10] for u in updates]  # base, tuned, few-shot, retrieval stats lines
    assert stats[0] == (pg.GENERATING, pg.GENERATING, "", "")  # before the first token
    base_done = next(i for i, (b, *_) in enumerate(stats) if b != pg.GENERATING)
    assert "generated" in stats[base_done][0] and stats[base_done][1] == pg.GENERATING
    assert pg.GENERATING not in stats[-1] and "generated" in stats[-1][1]
    assert pg.stopped("prompt 5 tokens · generated 7", pg.GENERATING, "") == [
        "prompt 5 tokens · generated 7",
        pg.STOPPED,
        "",
    ]

    class Failing(FakeEngine):
        def stream(self, *args, **kwargs):
            yield from super().stream(*args, **kwargs)
            raise RuntimeError("out of memory")

    *_, base_stats, tuned_stats, _, _, note = list(pg.respond(Failing(["x"]), "hi", {}, *settings))[
        -1
    ]
    assert "generated" in base_stats and tuned_stats == "" and "out of memory" in note


def test_playground_defaults_and_repetition_penalty_reach_the_engine(tiny_model_dir):
    assert (pg.DEFAULTS.max_new_tokens, pg.DEFAULTS.repetition_penalty) == (128, 1.1)
    assert chat.Settings().repetition_penalty == 1.0  # evaluation and the API stay plain
    with gr.Blocks() as demo:
        pg.build_playground_tab(FakeEngine([]))
    sliders = {b.label: b.value for b in demo.blocks.values() if isinstance(b, gr.Slider)}
    assert sliders["Max new tokens"] == 128 and sliders["Repetition penalty"] == 1.1
    fake = FakeEngine(["a", "b"])
    run = str(make_run(runs_dir() / "r", tiny_model_dir))
    list(pg.respond(fake, "hi", {}, run, "final", "", False, 3, 0.7, 0.9, 64, 0, "", 1.3))
    assert fake.calls[-1][2].repetition_penalty == 1.3


def test_the_run_note_names_its_base_model_without_a_server_path(tiny_model_dir):
    run = make_run(runs_dir() / "r", tiny_model_dir)
    _, _, note = pg.on_run_change(str(run))
    assert tiny_model_dir.name in note and str(tiny_model_dir.parent) not in note
    assert (
        pg.model_name("HuggingFaceTB/SmolLM2-135M-Instruct")
        == "HuggingFaceTB/SmolLM2-135M-Instruct"
    )


def test_take_last_turn_drops_replies_and_bumps_seed():
    def turns(*texts):
        roles = ["user", "assistant"] * len(texts)
        return [{"role": r, "content": t} for r, t in zip(roles, texts, strict=False)]

    history = {"base": turns("a", "b", "c", "d"), "tuned": turns("a", "x", "c", "y")}
    trimmed, prompt, seed = pg.take_last_turn(history, 4, 0.7)
    assert prompt == "c" and seed == 5 and trimmed["tuned"] == history["tuned"][:2]
    assert pg.take_last_turn(history, 4, 0.0)[2] == 4  # greedy: same seed, same reply


def test_multi_turn_history_is_per_column(tiny_model_dir):
    fake = FakeEngine(["base says", "tuned says"])
    run = str(make_run(runs_dir() / "r", tiny_model_dir))
    settings = (run, "final", "", False, 3, 0.7, 0.9, 64, 0, "sys")
    history = list(pg.respond(fake, "one", {}, *settings))[-1][0]
    list(pg.respond(fake, "two", history, *settings))
    _, rows, settings = fake.calls[-1]
    assert [m["content"] for m in rows[0].messages] == ["one", "base says", "two"]
    assert [m["content"] for m in rows[1].messages] == ["one", "tuned says", "two"]
    assert rows[1].adapter == runs.adapter_path(run) and settings.system_prompt == "sys"


@pytest.fixture
def launched(tiny_model_dir):
    make_run(runs_dir() / "run1", tiny_model_dir)
    with gr.Blocks() as demo:
        model = gr.Dropdown([str(tiny_model_dir)], value=str(tiny_model_dir), label="Base model")
        pg.build_playground_tab(ChatEngine(), model)
    demo.queue()
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_both_columns_stream_through_gradio_client(launched, tiny_model_dir):
    from gradio_client import Client

    run = str(runs_dir() / "run1")
    client = Client(launched, verbose=False)
    settings = (run, "final", str(tiny_model_dir), False, 3, 0.8, 0.95, 48, 3, "")
    job = client.submit("Describe: capital of France", *settings, api_name="/playground_send")
    updates = list(job)
    assert job.status().success, job.status()
    # gradio 6 sends message content as a list of blocks
    final_base = message_text(updates[-1][1][-1]["content"])
    final_tuned = message_text(updates[-1][2][-1]["content"])
    assert final_base and final_tuned and final_base != final_tuned

    def partial(update, column, final):
        box = update[column]
        text = message_text(box[-1]["content"]) if box and box[-1]["role"] == "assistant" else ""
        return 0 < len(text) < len(final)

    base_partials = [i for i, u in enumerate(updates) if partial(u, 1, final_base)]
    tuned_partials = [i for i, u in enumerate(updates) if partial(u, 2, final_tuned)]
    assert len(base_partials) >= 3 and len(tuned_partials) >= 3
    # interleaved: the tuned column grows before the base column has finished, and vice versa
    assert tuned_partials[0] < base_partials[-1] and base_partials[0] < tuned_partials[-1]
    assert "generated" in updates[-1][5] and "generated" in updates[-1][6]  # after 4 chat boxes


def test_evaluate_view_escapes_rows_and_reports(tiny_model_dir):
    from components import evaluate_tab as et

    row = {
        "index": 0,
        "prompt": EVIL,
        "reference": EVIL,
        "winner": "tuned",
        "outputs": {"base": EVIL, "tuned": "ok", "few_shot": EVIL},
        "scores": {s: {"rouge_l": 0.5} for s in ("base", "tuned", "few_shot")},
    }
    table = et.rows_html([row])
    assert "<script" not in table and "<img" not in table and "&lt;img src=x" in table
    metrics = {
        "exact_match": 0.5,
        "rouge_l": 0.25,
        "loss": 1.0,
        "perplexity": 2.7,
        "prompt_tokens": 20,
    }
    report = {
        "rows": 2,
        "verdict": EVIL,
        "base": metrics,
        "tuned": metrics,
        "few_shot": None,
        "tuned_vs_base": {"wins": 1, "ties": 1, "losses": 0},
        "data": EVIL,
    }
    html_text = et.report_html(report)
    assert (
        "<script" not in html_text and "ROUGE-L" in html_text and "Base + few-shot" not in html_text
    )
    assert "No evaluation yet" in et.report_html(None)


def test_few_shot_column_gets_training_examples_as_prior_turns(tiny_model_dir):
    fake = FakeEngine(["b", "t", "f"])
    run = str(make_run(runs_dir() / "r", tiny_model_dir))
    settings = (run, "checkpoint-2", "", True, 2, 0.7, 0.9, 64, 0, "")
    last = list(pg.respond(fake, "hello", {}, *settings))[-1]
    assert [m["content"] for m in last[4]] == ["hello", "f"]  # the few-shot chat box
    _, rows, _ = fake.calls[-1]
    train, val = runs.run_examples(run)
    assert len(train) == 9 and len(val) == 3  # 12 rows, validation_split 0.25
    shots = rows[2].messages[:-1]
    assert len(shots) == 4 and [m["role"] for m in shots] == ["user", "assistant"] * 2
    train_users = {e["messages"][0]["content"] for e in train}
    assert {shots[0]["content"], shots[2]["content"]} <= train_users  # never validation rows
    assert rows[1].adapter == runs.adapter_path(run, "checkpoint-2") and rows[2].adapter is None
    prompts = pg.example_prompts(run)
    assert sorted(prompts) == sorted(e["messages"][0]["content"] for e in val)


def test_retrieval_column_gets_the_training_examples_most_like_the_question(tiny_model_dir):
    fake = FakeEngine(["b", "t", "f", "r"])
    run = str(make_run(runs_dir() / "r", tiny_model_dir))
    settings = (run, "final", "", True, 2, 0.7, 0.9, 64, 0, "", 1.1, "")
    question = "Please describe the quick brown fox"
    last = list(pg.respond(fake, question, {}, *settings, True))[-1]
    assert [m["content"] for m in last[5]] == [question, "r"]  # the retrieval chat box
    assert "generated" in last[9]  # its stats line
    _, rows, settings_sent = fake.calls[-1]
    assert len(rows) == 4 and rows[3].adapter is None and settings_sent.seed == 0
    shots = rows[3].messages[:-1]
    assert [m["role"] for m in shots] == ["user", "assistant"] * 2
    assert all("quick brown fox" in m["content"] for m in shots if m["role"] == "user")
    train, _ = runs.run_examples(run)
    train_users = {e["messages"][0]["content"] for e in train}
    assert {shots[0]["content"], shots[2]["content"]} <= train_users
    # The next question finds its own examples; the column's history keeps only real turns.
    list(pg.respond(fake, "Describe: capital of France", last[0], *settings, True))
    retrieved = fake.calls[-1][1][3].messages
    assert [m["content"] for m in retrieved[-3:]] == [question, "r", "Describe: capital of France"]
    assert all("capital of France" in m["content"] for m in retrieved[:-3] if m["role"] == "user")
    few_then_retrieved = fake.calls[-1][1][2].messages[:4], retrieved[:4]
    assert few_then_retrieved[0] != few_then_retrieved[1]  # random examples vs the nearest


def test_visitors_see_and_use_only_their_own_runs(tiny_model_dir):
    """One visitor's run never appears in, or answers through, another visitor's playground
    or evaluation; runs made with the CLI (not in the job store) stay usable by all."""
    from components import evaluate_tab
    from training.config import RunConfig
    from training.jobs.runner import JobRunner

    runner = JobRunner()  # never started: the job only needs to be recorded with its owner
    job = runner.submit(
        RunConfig(model=str(tiny_model_dir), data="samples/json_answers.jsonl"), "alice"
    )
    alice_run = make_run(runs_dir() / job.run_dir.rsplit("/", 1)[-1], tiny_model_dir)
    cli_run = make_run(runs_dir() / "from-the-cli", tiny_model_dir)

    def listed(owner):
        return {value for _, value in run_picker.run_choices(owner)}

    assert str(alice_run) in listed("alice") and str(cli_run) in listed("alice")
    assert str(alice_run) not in listed("bob") and str(cli_run) in listed("bob")
    # Typing the path into the dropdown (custom values are allowed) reveals nothing either.
    checkpoints, examples, note = pg.on_run_change(str(alice_run), "bob")
    assert checkpoints["choices"] == [] and examples["choices"] == [] and "No run" in note
    fake = FakeEngine(["x", "y"])
    settings = (str(alice_run), "final", "", False, 3, 0.7, 0.9, 8, 0, "")
    *_, warning = list(pg.respond(fake, "hi", {}, *settings, owner="bob"))[-1]
    assert "Pick a run" in warning and fake.calls == []
    html, _ = evaluate_tab.run_evaluation(fake, str(alice_run), "final", 4, 0, None, "bob")
    assert "Evaluation failed" in html and "Pick a run" in html
    runner.shutdown()


def test_without_a_run_only_an_allowed_base_model_answers(tiny_model_dir):
    """The picker's model comes from the visitor: a server path outside the owner's model
    folders (another visitor's merged export, say) is refused before anything loads."""
    import os

    from training.settings import Settings

    fake = FakeEngine(["hello back"])
    settings = ("", "final", str(tiny_model_dir), False, 3, 0.7, 0.9, 8, 0, "")
    *_, warning = list(pg.respond(fake, "hi", {}, *settings, owner="bob"))[-1]
    assert "Only models from the list" in warning and fake.calls == []
    allowed = Settings(model_dirs=str(tiny_model_dir.parent))
    list(pg.respond(fake, "hi", {}, *settings, owner="bob", app_settings=allowed))
    assert fake.calls[-1][0] == os.path.realpath(tiny_model_dir)


def test_evaluating_a_run_that_runs_model_code_needs_the_owners_permission(tiny_model_dir):
    import yaml

    from components import evaluate_tab

    run = make_run(runs_dir() / "from-the-cli", tiny_model_dir)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**cfg, "trust_remote_code": True}))
    fake = FakeEngine(["x", "y"])
    html, _ = evaluate_tab.run_evaluation(fake, str(run), "final", 4, 0, None, "bob")
    assert "Evaluation failed" in html and "owner has not allowed" in html
    assert fake.calls == [] and not (run / "eval").exists()


def test_a_share_link_lets_another_visitor_chat_with_that_run_only(tiny_model_dir):
    from types import SimpleNamespace

    from training.config import RunConfig
    from training.jobs import shares
    from training.jobs.runner import JobRunner

    runner = JobRunner()  # never started: the job only records its owner
    job = runner.submit(RunConfig(model=str(tiny_model_dir), data="data.jsonl"), "alice")
    run = str(make_run(runs_dir() / job.run_dir.split("/")[-1], tiny_model_dir))
    runner.shutdown()
    fake = FakeEngine(["base says", "tuned says"])
    args = (run, "final", "", False, 3, 0.7, 0.9, 64, 0, "", 1.1)

    def ask(owner, token):
        return list(pg.respond(fake, "hi", {}, *args, owner, False, token))[-1]

    assert "Pick a run" in ask("bob", "")[-1]  # bob alone: refused
    said = pg.on_share(run, "final", "", {}, "bob")
    assert "Pick one of your runs" in said  # and he cannot share alice's run
    said = pg.on_share(
        run, "final", "What now?", {}, "alice", SimpleNamespace(headers={"host": "h:1"})
    )
    token = said.split("?share=")[1].split("`")[0]
    assert "http://h:1/?share=" in said and shares.get(token).prompt == "What now?"
    history = ask("bob", token)[0]
    assert history["tuned"][-1]["content"] == "tuned says"  # bob chats through the link
    opened = pg.open_share(SimpleNamespace(query_params={"share": token}))
    assert opened[0] == token and opened[1]["value"] == run and opened[3] == "What now?"
    assert "<" not in opened[4]
    checkpoints, *_ = pg.on_run_change(run, "bob", token)
    assert checkpoints["choices"] == runs.checkpoints(Path(run)) != []
    assert pg.on_run_change(run, "bob", "")[0]["choices"] == []
    assert runs.owned(run, "bob") is None  # Evaluate and Export ask runs.owned: still refused
    assert "Stopped 1 link" in pg.on_unshare(run, "alice")
    assert "Pick a run" in ask("bob", token)[-1]  # a page already open stops working too
    assert pg.open_share(SimpleNamespace(query_params={"share": token}))[-1] == pg.BAD_LINK
    assert pg.open_share(SimpleNamespace(query_params={}))[0] == ""
