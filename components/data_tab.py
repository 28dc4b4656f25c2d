"""The Data tab: bring a dataset in, see what is in it and exactly what is wrong with it.

Upload a file, pick a split of a Hugging Face Hub dataset (hub_picker.py: configuration,
split and revision from its metadata, the visitor's token for private or gated ones) or try
a sample, optionally override the detected format and map columns, then read the verdict,
the report grouped by problem, the token-length histogram, the statistics, a preview table
and any row rendered with the selected model's chat template. A Hub choice holds the
pinned reference (the commit's sha); unlike a file, it is not brought back after a reload.

`build_data_tab(model, trust, max_length, settings)` returns a `gr.State` holding the
`DataChoice` the Train tab trains on (training/data/choice.py); max_length is the Train
tab's widget, the one place that setting lives. When every error is in a row, a checkbox
offers to skip those rows and train on the others: an explicit choice, carried to the run.
Handlers are plain functions, tested without a browser: each returns or yields a `View`,
the tab's outputs in order.

Its length: upload, Hub and sample sources, the mapping editor and the row viewer share one
DataChoice state; formatters live in format.py and stats_format.py.
"""

import functools
import hashlib
import inspect
import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import gradio as gr
from gradio.utils import get_upload_folder

from components import format as fmt_html
from components import stats_format
from components.hub_picker import build_hub_picker, hub_ref, visitor_token
from training.config import RunConfig
from training.data import (
    SAMPLE_DESCRIPTIONS,
    SAMPLES,
    DataChoice,
    ReportSummary,
    export_for_provider,
    preview_file,
    render_example,
    validate_file,
)
from training.data.choice import recall, remember
from training.data.codes import DataError, make_finding
from training.data.detect import FIELD_NAMES, OPTIONAL, REQUIRED
from training.data.hub import open_split
from training.data.load import UPLOAD_SUFFIXES
from training.data.providers import PROVIDERS
from training.data.samples import SAMPLES_DIR
from training.data.validate import error_report
from training.models.access import check_base_model
from training.models.catalogue import load_tokenizer
from training.settings import Settings

log = logging.getLogger(__name__)

PREVIEW_ROWS = 20
SLOTS = 4  # most fields a format has (alpaca: instruction, input, output, system)
SLOT_FIELDS = ("slot1", "slot2", "slot3", "slot4")
FORMAT_CHOICES = [
    ("Detect automatically", "auto"),
    ("Chat messages (OpenAI: role/content)", "messages"),
    ("ShareGPT (conversations: from/value)", "sharegpt"),
    ("Alpaca (instruction / input / output)", "alpaca"),
    ("Prompt / completion (question / answer, ...)", "prompt_completion"),
    ("Plain text (language modelling)", "text"),
    ("Preference pairs: train on the chosen replies (DPO/ORPO not supported yet)", "preference"),
]
FAILED = "Something went wrong on our side while {}. The details are in the server log."
CHECKING = fmt_html.message_html("Checking your data…", "info")
START = fmt_html.message_html("Upload a file or try a sample to start.", "info")
PROGRESS = gr.Progress()  # the default that marks a progress parameter; gradio swaps in a live one


class View(NamedTuple):
    """Every output of the tab's main handlers, in the order build_data_tab wires them."""

    verdict: str = START
    report: str = ""
    stats: str = ""
    histogram: str = ""
    preview: str = ""
    detection: str = ""
    conversation: str = ""
    row: int = 1
    format_choice: str = "auto"
    roles: list = []  # canonical field held by each mapping slot
    slot1: dict = gr.update(visible=False)
    slot2: dict = gr.update(visible=False)
    slot3: dict = gr.update(visible=False)
    slot4: dict = gr.update(visible=False)
    options: dict = gr.update()  # the "Format and columns" accordion
    skip: dict = gr.update(visible=False, value=False)  # "Skip the N rows with errors"
    choice: DataChoice = DataChoice()  # what the Train tab reads (checked once .summary is set)


def roles_for(fmt: str | None) -> list[str]:
    """The canonical fields of a format, required first (what the mapping slots stand for)."""
    return [*REQUIRED[fmt], *OPTIONAL.get(fmt, ())] if fmt in REQUIRED else []


def choose(path, fmt_choice="auto", mapping=None, validation_file=None, skip=False) -> DataChoice:
    """What the user picked, not yet checked (format None = detect)."""
    return DataChoice(
        path=str(path) if path else None,
        format=None if fmt_choice in (None, "", "auto") else fmt_choice,
        mapping={k: v for k, v in (mapping or {}).items() if v},
        validation_file=str(validation_file) if validation_file else None,
        skip_bad_rows=bool(skip),
    )


def uploaded(path):
    """An upload box's value, which gradio gives as an absolute path: anything else (a hub:
    reference, a bare OWNER/NAME an API caller sent) would read as a dataset the server
    checked before (training/data/hub.py), so it is refused."""
    if path and not Path(str(path)).is_absolute():
        raise gr.Error("Upload a file; pick Hub datasets in the Hugging Face Hub section.")
    return path


def skip_box(summary: ReportSummary | None, ticked: bool) -> dict:
    """The "skip the rows with errors" checkbox: shown only when skipping would leave rows."""
    if summary is None or summary.ok or not summary.skippable:
        return gr.update(visible=False, value=False)
    n, m = summary.skippable, summary.stats.get("examples", 0)
    label = (
        f"Skip the {n:,} row{'s' * (n != 1)} with errors and train on the other {m:,} "
        "(the run lists the skipped rows, with why, in skipped_rows.jsonl)"
    )
    return gr.update(visible=True, value=ticked, label=label)


def skip_verdict(choice: DataChoice) -> str | None:
    """The verdict when rows with errors could be skipped (None: the report's own verdict)."""
    s = choice.summary
    if s is None or s.ok or not s.skippable:
        return None
    n, m = s.skippable, s.stats.get("examples", 0)
    rows = f"{n:,} row{'s' * (n != 1)}"
    if choice.skip_bad_rows:
        text = f"Ready to train on {m:,} examples; the {rows} with errors will be left out."
        return fmt_html.message_html(text, "ok")
    errors = fmt_html.plural(s.errors, "error")
    text = (
        f"Fix {errors} first, then check again, or tick “Skip” below to train on the other {m:,}."
    )
    return fmt_html.message_html(text, "error")


def get_tokenizer(model: str | None, trust: bool, progress=None, settings: Settings | None = None):
    """(tokenizer or None, why not): token counts fall back to estimates, never fail. The
    model and trust pass the app's access rule first (training/models/access.py)."""
    say = (lambda m: progress(0, desc=m)) if progress else None
    try:
        model, trust = check_base_model(model, trust, settings or Settings())
        return load_tokenizer(model, trust_remote_code=trust, progress=say), ""
    except ValueError as e:
        return None, str(e)
    except Exception as e:
        log.exception("loading the tokenizer of %s failed", model)
        return None, f"{type(e).__name__}: {e}"


# --- handlers -----------------------------------------------------------------------


def preview_view(sel: DataChoice, data=None) -> View:
    """The quick part, no model needed: preview table, detected format, mapping slots.
    data: what to read instead of sel.path (a Hub split resolved with the visitor's token)."""
    p = preview_file(data or sel.path, PREVIEW_ROWS, sel.format, sel.mapping or None)
    d = p.detection
    fmt = sel.format or p.format
    roles = roles_for(fmt)
    choices = [("(none)", ""), *[(c, c) for c in p.columns]]
    slots = [gr.update(visible=False)] * SLOTS
    for i, r in enumerate(roles):
        optional = "" if r in REQUIRED[fmt] else " (optional)"
        label = f"Column for the {FIELD_NAMES.get(r, r)}{optional}"
        value = d.mapping.get(r, "") if d else ""
        slots[i] = gr.update(visible=True, label=label, choices=choices, value=value)
    unsure = p.error is not None or d is None or d.ambiguous or d.format is None
    detection = fmt_html.detection_html(p)
    if d is not None and d.format is None and d.kinds:  # recognised, e.g. preference pairs
        detection = fmt_html.message_html(d.reason, "warning")
    return View(
        verdict=CHECKING,
        preview=fmt_html.preview_html(p),
        detection=detection,
        format_choice=sel.format or "auto",
        roles=roles,
        **dict(zip(SLOT_FIELDS, slots, strict=True)),
        options=gr.update(open=True) if unsure else gr.update(),
        choice=sel,
    )


def load_and_check(
    sel: DataChoice, max_length, model, trust, max_bytes, progress, settings=None, row=1, data=None
) -> Iterator[View]:
    """Preview at once, then the full check with the model's tokenizer (progress shown);
    `row` is the row shown as the model sees it; data: as for preview_view."""
    if not sel.path:
        yield View(choice=sel)
        return
    view = preview_view(sel, data)
    yield view
    # The first use of the bundled model converts it (~30 s): progress says so.
    tokenizer, why_not = get_tokenizer(model, trust, progress, settings)
    report = validate_file(
        data or sel.path,
        tokenizer=tokenizer,
        max_length=int(max_length or RunConfig.max_length),
        fmt=sel.format,
        mapping=sel.mapping or None,
        validation_file=sel.validation_file,
        max_bytes=max_bytes,
        progress=lambda f, m: progress(f, desc=m),
    )
    if why_not:
        report.warnings.insert(
            0, make_finding("model_unavailable", None, model=model, detail=why_not)
        )
    stats, choice = report.stats, sel.checked(report)
    yield view._replace(
        verdict=skip_verdict(choice) or fmt_html.verdict_html(report),
        report=fmt_html.report_html(report),
        stats=stats_format.stats_html(stats),
        conversation=show_row(sel, row, model, trust, settings),
        row=row,
        histogram=stats_format.histogram_svg(stats.get("histogram"), stats.get("max_length")),
        skip=skip_box(choice.summary, choice.skip_bad_rows),
        choice=choice,
    )


def on_upload(
    file,
    validation_file,
    max_length,
    model,
    trust,
    progress=PROGRESS,
    max_bytes=None,
    settings=None,
):
    """A new file: detect its format afresh, then check it."""
    sel = choose(uploaded(file), "auto", None, uploaded(validation_file))
    yield from load_and_check(sel, max_length, model, trust, max_bytes, progress, settings)


def on_sample(name, max_length, model, trust, progress=PROGRESS, max_bytes=None, settings=None):
    """'Try a sample': the bundled file, detected and checked like an upload."""
    if name not in SAMPLES:
        raise gr.Error("Pick one of the samples first.")
    sel = choose(SAMPLES[name])
    yield from load_and_check(sel, max_length, model, trust, max_bytes, progress, settings)


def on_hub_load(
    name,
    config,
    split,
    revision,
    token,
    max_length,
    model,
    trust,
    progress=PROGRESS,
    max_bytes=None,
    settings=None,
):
    """A split of a Hub dataset: resolved with the visitor's token (False: none; never the
    Space's own), refused over the upload limit before any download, previewed from its
    first file, then checked in full like an upload. The choice records the commit's sha."""
    try:
        ref = hub_ref(name, config, split, revision)
        yield View(verdict=fmt_html.message_html(f"Looking up {ref} on the Hub…", "info"))
        data = open_split(ref, token or False, max_bytes)
    except DataError as e:
        report = error_report(e)
        yield View(verdict=fmt_html.verdict_html(report), report=fmt_html.report_html(report))
        return
    sel = choose(str(data.ref))
    yield from load_and_check(
        sel, max_length, model, trust, max_bytes, progress, settings, data=data
    )


def on_format(
    sel, fmt_choice, max_length, model, trust, progress=PROGRESS, max_bytes=None, settings=None
):
    """A format chosen by hand: columns are matched afresh for that format."""
    sel = choose(sel.path, fmt_choice, None, sel.validation_file)
    yield from load_and_check(sel, max_length, model, trust, max_bytes, progress, settings)


def on_options(
    sel,
    fmt,
    roles,
    s1,
    s2,
    s3,
    s4,
    val_file,
    max_len,
    model,
    trust,
    row=1,
    progress=PROGRESS,
    max_bytes=None,
    settings=None,
):
    """Columns mapped by hand, a validation file, a new max length or model: check again
    (a ticked "skip the rows with errors" stays ticked, the row shown stays shown). With
    nothing chosen yet there is nothing to check (a model set on page load changes nothing)."""
    if not sel.path:
        yield View(*(gr.skip(),) * len(View._fields))
        return
    mapping = dict(zip(roles, (s1, s2, s3, s4), strict=False))
    sel = choose(sel.path, fmt, mapping, uploaded(val_file), sel.skip_bad_rows)
    row = max(1, int(row or 1))
    yield from load_and_check(sel, max_len, model, trust, max_bytes, progress, settings, row)


def on_skip(sel: DataChoice, ticked) -> tuple:
    """The "skip the rows with errors" box ticked or cleared: (verdict, choice)."""
    sel = replace(sel, skip_bad_rows=bool(ticked))
    return skip_verdict(sel) or gr.update(), sel


PROVIDER_TARGETS = [("OpenAI", "openai"), ("Azure OpenAI", "azure")]


def provider_models(target: str) -> dict:
    """The model picker for a provider: its fine-tunable models, its default first chosen."""
    provider = PROVIDERS.get(target) or PROVIDERS["openai"]
    return gr.update(choices=[m.name for m in provider.models], value=provider.default_model)


def on_provider_export(sel: DataChoice, target, model) -> tuple:
    """The checked data as chat JSONL for OpenAI's or Azure's fine-tuning, their rules
    checked: (the file to download or None, the report)."""
    if not sel.path or sel.summary is None:
        return None, fmt_html.message_html("Check a dataset above first.", "warning")
    if target not in PROVIDERS:
        return None, fmt_html.message_html("Pick OpenAI or Azure OpenAI.", "warning")
    # One folder per data file, provider and model: clicking again rewrites, never piles up.
    key = hashlib.sha256(f"{sel.path}\0{target}\0{model}".encode()).hexdigest()[:24]
    folder = Path(get_upload_folder()) / f"tunesmith-provider-{key}"
    folder.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^\w.-]+", "-", Path(sel.path).stem)[:60]  # hub:... names too
    out = folder / f"{stem}.{target}.jsonl"
    try:
        result = export_for_provider(
            sel.path, target, model or None, sel.format, sel.mapping or None, out
        )
    except ValueError as e:  # an unknown model: a plain message
        return None, fmt_html.message_html(str(e), "error")
    return (str(result.out) if result.out else None), stats_format.provider_html(result)


def data_roots() -> dict[str, Path]:
    """The folders a kept choice may point into: Gradio's uploads and the bundled samples."""
    return {"upload": Path(get_upload_folder()), "sample": SAMPLES_DIR}


def on_keep(sel: DataChoice, settings: Settings | None = None):
    """A checked choice, signed for the browser (a reload brings it back); None clears it."""
    return remember(sel, data_roots(), (settings or Settings()).server_key())


def on_restore(
    kept,
    now: DataChoice,
    max_length,
    model,
    trust,
    progress=PROGRESS,
    max_bytes=None,
    settings=None,
) -> Iterator[tuple]:
    """Page load: the dataset this browser had chosen, checked again; (the file box, the
    sample picker, *View). Anything not signed by this server or gone is ignored, and so is
    the kept one when the visitor has already picked data on this page (`now`)."""
    sel = recall(kept, data_roots(), (settings or Settings()).server_key())
    if sel is None or (now is not None and now.path):
        yield (gr.skip(),) * (2 + len(View._fields))
        return
    sample = next((name for name, path in SAMPLES.items() if str(path) == sel.path), None)
    shown = (gr.update(), gr.update(value=sample)) if sample else (sel.path, gr.update())
    for view in load_and_check(sel, max_length, model, trust, max_bytes, progress, settings):
        yield *shown, *view


def show_row(sel: DataChoice, row, model, trust, settings: Settings | None = None) -> str:
    """One row as the model will see it: the selected model's chat template, escaped."""
    if not sel.path:
        return ""
    row = max(1, int(row or 1))
    p = preview_file(sel.path, row, sel.format, sel.mapping or None)
    if row not in p.row_numbers:
        return fmt_html.message_html(f"There is no row {row} (rows start at 1).", "warning")
    i = p.row_numbers.index(row)
    if p.examples[i] is None:
        return fmt_html.problem_row_html(row, p.rows[i], p.problems[i] or [p.error or ""])
    tokenizer, why_not = get_tokenizer(model, trust, settings=settings)
    try:
        text = render_example(p.examples[i], tokenizer)
    except ValueError as e:  # the template refuses the row (its turns, or tool calls)
        return fmt_html.problem_row_html(row, p.rows[i], [str(e)])
    if tokenizer is None:
        title = f"Row {row} in ChatML layout (the model's own template is unavailable: {why_not})"
        return fmt_html.rendered_html(text, ["<|im_start|>", "<|im_end|>"], title)
    title = f"Row {row} exactly as {model} sees it in training (special tokens in colour)"
    specials = [*tokenizer.all_special_tokens, *tokenizer.get_added_vocab()]
    return fmt_html.rendered_html(text, specials, title)


def safe(handler, doing: str, fallback):
    """Wrap a handler: log any exception with its traceback server-side and show the
    user a plain message (`fallback(message)` gives the outputs) instead."""

    def fail():
        log.exception("Data tab: %s failed", doing)
        gr.Warning(FAILED.format(doing))
        return fallback(fmt_html.message_html(FAILED.format(doing), "error"))

    if inspect.isgeneratorfunction(handler):

        @functools.wraps(handler)
        def gen(*args, **kwargs):
            try:
                yield from handler(*args, **kwargs)
            except gr.Error:
                raise
            except Exception:
                yield fail()

        return gen

    @functools.wraps(handler)
    def fn(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except Exception:
            return fail()

    return fn


def blank_view(message: str = START) -> View:
    return View(verdict=message)


def wire_hub(hub, check_inputs: list, outputs: list, cap: dict) -> None:
    """ "Load this split": the visitor's sign-in token arrives by type (hub_picker.py)."""

    def load(
        name,
        config,
        split,
        revision,
        pasted,
        length,
        model,
        trust,
        oauth: gr.OAuthToken | None,
        progress=PROGRESS,
    ):
        picked = (name, config, split, revision, visitor_token(pasted, oauth))
        yield from on_hub_load(*picked, length, model, trust, progress, **cap)

    gr.on(
        [hub.load.click],
        safe(load, "loading the dataset", blank_view),
        [hub.name, hub.config, hub.split, hub.revision, hub.token, *check_inputs],
        outputs,
        show_progress_on=[outputs[0]],
        api_visibility="private",
        trigger_mode="always_last",
    )


def build_data_tab(
    model: gr.Dropdown,
    trust_remote_code: gr.Checkbox | None = None,
    max_length: gr.Slider | None = None,
    settings: Settings | None = None,
) -> gr.State:
    """Lay out and wire the Data tab (it opens its own gr.Tab). max_length: the Train tab's
    widget (the report counts tokens at its value and checks again when it changes).
    Returns the gr.State holding the DataChoice."""
    settings = settings or Settings()
    trust = trust_remote_code if trust_remote_code is not None else gr.State(False)
    max_len = max_length if max_length is not None else gr.State(RunConfig.max_length)
    first = next(iter(SAMPLES))
    with gr.Tab("Data", id="data"):
        with gr.Row(equal_height=True):
            upload = gr.File(
                label="Your dataset: JSONL, JSON, CSV, TSV, Parquet or TXT "
                f"(up to {settings.max_upload_mb:g} MB)",
                file_types=UPLOAD_SUFFIXES,
                type="filepath",
                scale=3,
                elem_id="ts-upload",
            )
            with gr.Column(scale=2):
                sample = gr.Dropdown(
                    list(SAMPLES),
                    value=first,
                    label="…or try a sample",
                    info=SAMPLE_DESCRIPTIONS.get(first),
                )
                sample_btn = gr.Button("Try this sample")
        hub = build_hub_picker(settings)
        with gr.Accordion("Format and columns · validation file", open=False) as opts:
            fmt = gr.Dropdown(FORMAT_CHOICES, value="auto", label="Format")
            with gr.Row():
                slots = [gr.Dropdown(label=f"Column {i + 1}", visible=False) for i in range(SLOTS)]
            val_upload = gr.File(
                label="Validation file (optional; without one, 10 % of the rows are held out)",
                file_types=UPLOAD_SUFFIXES,
                type="filepath",
            )
        verdict = gr.HTML(START, elem_id="ts-verdict")
        skip = gr.Checkbox(False, visible=False, elem_id="ts-skip-bad-rows")
        detection = gr.HTML(elem_id="ts-detection")
        with gr.Row():
            with gr.Column(scale=3):
                gr.Markdown("### Problems found")
                report = gr.HTML(elem_id="ts-report")
            with gr.Column(scale=2):
                gr.Markdown("### Tokens per example")
                histogram = gr.HTML(elem_id="ts-histogram")
                stats = gr.HTML(elem_id="ts-stats")
        gr.Markdown("### Preview")
        preview = gr.HTML(elem_id="ts-preview")
        gr.Markdown("### One row as the model sees it")
        with gr.Row():
            row = gr.Number(
                1,
                precision=0,
                minimum=1,
                label="Row number",
                elem_id="ts-row",
                scale=0,
                min_width=200,
            )
        conversation = gr.HTML(elem_id="ts-conversation")
        with gr.Accordion("Take this data to OpenAI or Azure OpenAI", open=False):
            gr.Markdown(
                "The same examples as chat JSONL for their fine-tuning, checked against their "
                "rules (roles, token limit per example, minimum count, file size), with token "
                "counts from their tokenizer and the training tokens they would bill."
            )
            with gr.Row():
                target = gr.Radio(PROVIDER_TARGETS, value="openai", label="Provider")
                target_model = gr.Dropdown(
                    [m.name for m in PROVIDERS["openai"].models],
                    value=PROVIDERS["openai"].default_model,
                    label="Their base model",
                )
                provider_btn = gr.Button("Export for fine-tuning there")
            provider_file = gr.File(label="Chat JSONL", interactive=False)
            provider_report = gr.HTML(elem_id="ts-provider-report")
        roles, choice = gr.State([]), gr.State(DataChoice())
        kept = gr.BrowserState(None, storage_key="tunesmith-data")  # signed: see on_keep

    outputs = [verdict, report, stats, histogram, preview, detection, conversation, row, fmt]
    outputs += [roles, *slots, opts, skip, choice]
    assert len(outputs) == len(View._fields)
    cap = {"max_bytes": settings.max_upload_bytes, "settings": settings}

    def wire(triggers, handler, inputs, api_name, doing):
        gr.on(
            triggers,
            safe(functools.partial(handler, **cap), doing, blank_view),
            inputs,
            outputs,
            api_name=api_name,
            show_progress_on=[verdict],
            trigger_mode="always_last",
        )

    upload_inputs = [upload, val_upload, max_len, model, trust]
    wire([upload.upload], on_upload, upload_inputs, "upload", "checking the file")
    sample_inputs = [sample, max_len, model, trust]
    wire([sample_btn.click], on_sample, sample_inputs, "try_sample", "loading the sample")
    wire_hub(hub, [max_len, model, trust], outputs, cap)
    format_inputs = [choice, fmt, max_len, model, trust]
    wire([fmt.input], on_format, format_inputs, "set_format", "reading the file in that format")
    rechecks = [s.input for s in slots] + [val_upload.upload, val_upload.clear]
    if max_length is not None:
        rechecks.append(max_length.release)
    option_inputs = [choice, fmt, roles, *slots, val_upload, max_len, model, trust, row]
    triggers = rechecks + [model.change, trust.change]
    wire(triggers, on_options, option_inputs, "recheck", "checking the file")
    skip.input(
        safe(on_skip, "changing which rows are trained", lambda m: (m, DataChoice())),
        [choice, skip],
        [verdict, choice],
        api_name="skip_bad_rows",
    )
    upload.clear(blank_view, None, outputs, api_visibility="private")
    sample.change(
        lambda name: gr.update(info=SAMPLE_DESCRIPTIONS.get(name)),
        sample,
        sample,
        api_visibility="private",
    )
    gr.on(
        [row.input],
        safe(functools.partial(show_row, settings=settings), "showing that row", lambda m: m),
        [choice, row, model, trust],
        conversation,
        api_name="show_row",
        trigger_mode="always_last",
    )
    target.change(provider_models, target, target_model, api_visibility="private")
    provider_btn.click(
        safe(on_provider_export, "exporting the data", lambda m: (None, m)),
        [choice, target, target_model],
        [provider_file, provider_report],
        api_name="export_for_provider",
    )
    # The chosen dataset is kept in the browser and checked again after a reload.
    choice.change(
        functools.partial(on_keep, settings=settings),
        choice,
        kept,
        show_progress="hidden",
        api_visibility="private",
    )
    gr.on(
        None,
        safe(
            functools.partial(on_restore, **cap),
            "bringing back your dataset",
            lambda m: (gr.update(), gr.update(), *blank_view(m)),
        ),
        [kept, choice, max_len, model, trust],
        [upload, sample, *outputs],
        show_progress_on=[verdict],
        api_visibility="private",
    )
    return choice
