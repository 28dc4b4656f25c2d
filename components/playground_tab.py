"""Playground tab: one prompt, side-by-side columns (base, tuned, base + few-shot, base +
retrieved examples) that stream at the same time from one loaded model.

The columns are rows of ONE batch in the chat engine (training/chat/engine.py), planned by
training/chat/columns.py, so their tokens
arrive interleaved and every yield updates whichever column just grew. Each column keeps
its own history (its own previous replies). Raw conversations live in a gr.State (plain
dicts, deep-copyable; the model lives in the engine's cache, never here); the chat boxes
only show an HTML-escaped copy, so nothing a model or a dataset writes runs in the page.
Each column's line under its chat says "generating…" until its own reply is complete.
Starting values: training/chat/engine.py's PLAYGROUND (128 new tokens, repetition penalty 1.1).
"""

import html
import logging
import os
from functools import partial
from pathlib import Path

import gradio as gr

from components import run_picker
from components.run_picker import build_run_row, checkpoint_update
from training.chat import columns
from training.chat.engine import PLAYGROUND, ChatEngine, ReplyStats, Settings
from training.jobs import runs, shares
from training.models.access import check_base_model
from training.models.catalogue import hub_id
from training.settings import Settings as AppSettings

log = logging.getLogger(__name__)

SIDES = columns.SIDES
DEFAULTS = PLAYGROUND
NO_RUN_NOTE = "No run picked: only the base model (the picker above) answers."
SHARED_NOTE = (
    "**Shared comparison** of the run `{}`: ask anything; the base and tuned models answer "
    "side by side. The link lets you chat, nothing more."
)
BAD_LINK = "⚠️ This share link does not work (any more): its owner may have stopped sharing."
GENERATING = "⏳ generating…"
STOPPED = "Stopped."


def shown(text: str) -> str:
    """What a chat box displays: the exact characters, never markup."""
    return html.escape(text, quote=False)


def display(messages: list[dict]) -> list[dict]:
    return [{"role": m["role"], "content": shown(m["content"])} for m in messages]


def stats_text(stats: ReplyStats | None) -> str:
    if stats is None:
        return ""
    speed = stats.generated_tokens / stats.latency_s if stats.latency_s else 0
    return (
        f"prompt {stats.prompt_tokens:,} tokens · generated {stats.generated_tokens:,} · "
        f"{stats.latency_s:.1f} s ({speed:.0f} tok/s)"
    )


def model_name(model: str) -> str:
    """A base model as visitors may read it: its Hub id, or a folder's name (never its path)."""
    return hub_id(model) or Path(model).name


def example_prompts(run) -> list[str]:
    """Prompts from the run's validation split; a moved data file only costs the examples."""
    try:
        return columns.example_prompts(run)
    except Exception:
        log.info("no validation examples for %s", run, exc_info=True)
        return []


def on_run_change(run: str, owner: str = "", share: str = ""):
    via_link = shares.chat_owner(share, run, owner)
    checkpoint, path = checkpoint_update(run, via_link)
    prompts = example_prompts(path)
    if path:
        model = runs.run_config(path).model
        note = f"Base model of this run: `{shown(model_name(model))}`. Tuned = its adapter."
        if via_link != owner:
            note = f"{SHARED_NOTE.format(shown(path.name))} {note}"
    else:
        note = NO_RUN_NOTE
    return checkpoint, gr.update(choices=[(p[:90], p) for p in prompts], value=None), note


def respond(
    engine: ChatEngine,
    prompt,
    history,
    run,
    checkpoint,
    model,
    few_shot,
    k,
    temperature,
    top_p,
    max_new,
    seed,
    system,
    repetition_penalty=DEFAULTS.repetition_penalty,
    owner="",
    retrieval=False,
    share="",
    app_settings: AppSettings | None = None,
):
    """Stream every column's reply to `prompt`; yields (history, prompt box, 4 chats, 4 stats, note).
    A column's stats line reads GENERATING until its reply is complete. Without a run the
    picker's model answers, once the app's access rule allows it. `share`: the token of the
    link this page was opened with (it lets this one run answer; checked on every request)."""
    owner = shares.chat_owner(share, run, owner)
    history = {s: list(history.get(s, [])) for s in SIDES}
    stats = dict.fromkeys(SIDES, "")

    def update(note=None):
        chats = [display(history[s]) for s in SIDES]
        return history, "", *chats, *[stats[s] for s in SIDES], gr.skip() if note is None else note

    if not (prompt or "").strip():
        yield update()
        return
    try:
        if not run:
            model, _ = check_base_model(model, False, app_settings or AppSettings())
        plan = columns.plan_columns(run, checkpoint, model, few_shot, k, owner, retrieval)
    except Exception as exc:
        yield update(f"⚠️ {shown(str(exc))}")
        return
    for s in SIDES:
        if s not in plan.columns:
            history[s] = []
    names = list(plan.columns)
    for s in names:
        history[s].append({"role": "user", "content": prompt})
    rows = plan.rows(history)
    for s in names:
        history[s].append({"role": "assistant", "content": ""})
        stats[s] = GENERATING
    yield update()
    settings = Settings(
        temperature,
        top_p,
        int(max_new),
        int(seed or 0),
        system or "",
        repetition_penalty=float(repetition_penalty or 1),
    )
    try:
        events = engine.stream(plan.base_model, rows, settings, tokenizer_dir=plan.tokenizer_dir)
        for ev in events:
            side = names[ev.row]
            history[side][-1]["content"] += ev.text
            if ev.stats:
                stats[side] = stats_text(ev.stats)
            yield update()
    except Exception as exc:
        log.exception("generation failed")
        stats.update({s: "" for s in names if stats[s] == GENERATING})
        yield update(f"⚠️ Generation failed: {shown(str(exc))}")


def share_link(share: shares.Share, request: gr.Request | None, settings: AppSettings) -> str:
    """The link to give out: this app's public address with ?share=TOKEN."""
    if settings.in_space and (host := os.environ.get("SPACE_HOST")):
        base = f"https://{host}/"
    else:
        headers = getattr(request, "headers", None) or {}
        base = headers.get("origin") or f"http://{headers.get('host', '127.0.0.1:7860')}"
        base = base.rstrip("/") + "/"
    return f"{base}?share={share.token}"


def on_share(run, checkpoint, prompt, history, owner, request: gr.Request = None, settings=None):
    """ "Share this comparison": a new link to this run (the visitor's own, never one opened
    through a link) with the last question preloaded."""
    try:
        path = runs.open(run, checkpoint, owner)
    except ValueError:
        return "Pick one of your runs first: the base model alone cannot be shared."
    asked = [m["content"] for m in history.get("base", []) if m["role"] == "user"]
    share = shares.create(path, owner, checkpoint, (prompt or "").strip() or (asked or [""])[-1])
    link = share_link(share, request, settings or AppSettings())
    return (
        f"Anyone with this link can chat with **{shown(path.name)}** (nothing else of yours): "
        f"`{link}` · stop it with “Stop sharing this run”."
    )


def on_unshare(run, owner) -> str:
    path = runs.owned(run, owner)
    if path is None:
        return "Pick one of your runs first."
    n = shares.revoke_run(path, owner)
    return f"Stopped {n} link{'s' * (n != 1)} to {shown(path.name)}." if n else "No live links."


def open_share(request: gr.Request = None):
    """Page load with ?share=TOKEN: the shared run and its question in the Playground, the
    Playground tab selected; (share, run, checkpoint, prompt, note, tabs). No token: nothing."""
    params = getattr(request, "query_params", None) or {}
    share = shares.get(params.get("share"))
    if share is None:
        nothing = (gr.skip(),) * 5
        return ("", *nothing) if not params.get("share") else ("", *nothing[:4], BAD_LINK)
    run = str(share.run_dir)
    return (
        share.token,
        gr.update(choices=[(run_picker.shared_label(share), run)], value=run),
        gr.update(choices=[share.checkpoint], value=share.checkpoint),
        share.prompt,
        SHARED_NOTE.format(shown(share.run)),
    )


def stopped(*lines: str) -> list[str]:
    """After Stop: a column still generating says it was stopped; finished ones keep their stats."""
    return [STOPPED if line == GENERATING else line for line in lines]


def take_last_turn(history: dict, seed: float, temperature: float):
    """Regenerate: drop every column's last exchange, return its prompt (and a new seed when
    sampling, else the reply would repeat exactly)."""
    prompt = ""
    trimmed = {}
    for s in SIDES:
        turns = list(history.get(s, []))
        while turns and turns[-1]["role"] == "assistant":
            turns.pop()
        if turns and turns[-1]["role"] == "user":
            asked = turns.pop()["content"]
            prompt = prompt or asked
        trimmed[s] = turns
    return trimmed, prompt, (int(seed) + 1 if temperature > 0 else seed)


def build_playground_tab(
    engine: ChatEngine,
    model_dropdown=None,
    owner=None,
    app_settings: AppSettings | None = None,
    tabs: gr.Tabs | None = None,
) -> None:
    """engine: the app's chat engine; model_dropdown: the shared base-model picker; owner:
    the visitor's id (components/visitor.py's Visitor.owner); without one only CLI runs show.
    app_settings: which base models visitors may load (training/models/access.py). tabs: the
    app's gr.Tabs, switched to this tab when the page opens with a share link."""
    model_box = model_dropdown if model_dropdown is not None else gr.State("")
    owner = owner if owner is not None else gr.State("")
    with gr.Tab("Playground", id="playground") as tab:
        gr.Markdown(
            "Ask once, compare side by side: the base model, your tuned model and the "
            "base model prompted with examples from your data (random ones, or the ones most "
            "like your question)."
        )
        share = gr.State("")  # the token this page was opened with: set on load, server-side
        run, checkpoint = build_run_row(tab, owner, base_only=True, elem_id="ts-pg", share=share)
        note = gr.Markdown(NO_RUN_NOTE)
        with gr.Accordion("Generation settings", open=False):
            with gr.Row():
                temperature = gr.Slider(
                    0, 2, DEFAULTS.temperature, step=0.05, label="Temperature", info="0 = greedy"
                )
                top_p = gr.Slider(0.05, 1, DEFAULTS.top_p, step=0.05, label="Top-p")
                max_new = gr.Slider(
                    16,
                    1024,
                    DEFAULTS.max_new_tokens,
                    step=16,
                    label="Max new tokens",
                    info="every column waits for the longest reply",
                )
                repetition = gr.Slider(
                    1,
                    2,
                    DEFAULTS.repetition_penalty,
                    step=0.05,
                    label="Repetition penalty",
                    info="1 = off; higher stops small models looping",
                )
                seed = gr.Number(
                    DEFAULTS.seed, precision=0, label="Seed", info="same for every column"
                )
            system = gr.Textbox(label="System prompt (all columns)", lines=2)
            with gr.Row():
                few_shot = gr.Checkbox(
                    False,
                    label="Add a base + few-shot column",
                    info="k training examples as earlier turns: the prompting baseline",
                )
                retrieval = gr.Checkbox(
                    False,
                    label="Add a base + retrieved examples column",
                    info="the k training examples most like each message, as earlier turns: "
                    "the retrieval baseline",
                )
                k = gr.Slider(1, 8, 3, step=1, label="k (examples)")
        boxes, stat_boxes, side_columns = [], [], []
        with gr.Row(equal_height=True):
            for side, label in SIDES.items():
                with gr.Column(visible=side in ("base", "tuned"), min_width=280) as column:
                    box = gr.Chatbot(
                        label=label,
                        height=440,
                        sanitize_html=True,
                        render_markdown=False,
                        allow_tags=False,
                        elem_classes=["ts-chat", "ts-chat-" + side],
                    )
                    boxes.append(box)
                    stat_boxes.append(gr.Markdown(elem_classes=["ts-reply-stats"]))
                side_columns.append(column)
        examples = gr.Dropdown([], label="Example prompts from the validation split", value=None)
        prompt = gr.Textbox(
            placeholder="Type a message and press Enter",
            show_label=False,
            lines=2,
            elem_id="ts-pg-prompt",
        )
        with gr.Row():
            send = gr.Button("Send", variant="primary", elem_id="ts-pg-send")
            regenerate = gr.Button("Regenerate")
            stop = gr.Button("Stop", variant="stop")
            clear = gr.Button("Clear")
        with gr.Row():
            share_btn = gr.Button("Share this comparison", size="sm", elem_id="ts-share")
            unshare_btn = gr.Button("Stop sharing this run", size="sm", elem_id="ts-unshare")
        share_md = gr.Markdown(elem_id="ts-share-link")
        history = gr.State({s: [] for s in SIDES})
        hidden_prompt = gr.State("")  # in the tab: anything directly under gr.Tabs breaks its bar

    settings = [run, checkpoint, model_box, few_shot, k, temperature, top_p, max_new, seed]
    settings += [system, repetition, owner, retrieval, share]
    outputs = [history, prompt, *boxes, *stat_boxes, note]
    private = {"api_visibility": "private"}
    # One engine, one model: generations queue behind each other (position shown) instead of
    # piling onto the lock; evaluation shares the same concurrency id.
    queue = {"concurrency_id": "chat-engine", "concurrency_limit": 1}
    reply = partial(respond, engine, app_settings=app_settings)
    inputs = [prompt, history, *settings]
    sent = send.click(reply, inputs, outputs, api_name="playground_send", **queue)
    entered = prompt.submit(reply, inputs, outputs, **private, **queue)
    regen = regenerate.click(
        take_last_turn, [history, seed, temperature], [history, hidden_prompt, seed], **private
    ).then(reply, [hidden_prompt, history, *settings], outputs, **private, **queue)
    stop.click(stopped, stat_boxes, stat_boxes, cancels=[sent, entered, regen], **private)
    clear.click(
        lambda: ({s: [] for s in SIDES}, *[[] for _ in SIDES], *["" for _ in SIDES]),
        None,
        [history, *boxes, *stat_boxes],
        cancels=[sent, entered, regen],
        **private,
    )
    run.change(on_run_change, [run, owner, share], [checkpoint, examples, note], **private)

    def share_now(run, checkpoint, prompt, history, owner, request: gr.Request):
        # A closure, not a partial: gradio finds gr.Request by the function's own hints.
        return on_share(run, checkpoint, prompt, history, owner, request, app_settings)

    share_btn.click(
        share_now,
        [run, checkpoint, prompt, history, owner],
        share_md,
        **private,
    )
    unshare_btn.click(on_unshare, [run, owner], share_md, **private)
    opened = gr.on(None, open_share, None, [share, run, checkpoint, prompt, note], **private)
    if tabs is not None:
        opened.then(
            lambda token: gr.Tabs(selected="playground") if token else gr.skip(),
            share,
            tabs,
            **private,
        )
    examples.change(lambda p: p or gr.skip(), examples, prompt, **private)
    few_shot.change(lambda on: gr.update(visible=on), few_shot, side_columns[2], **private)
    retrieval.change(lambda on: gr.update(visible=on), retrieval, side_columns[3], **private)
