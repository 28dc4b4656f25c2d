"""The model card (README.md) of an exported adapter or merged model, built from the run's
config, its metrics, the adapter's own config, the evaluation report and the decision report
(RUN_DIR/decision.md, training/evaluation/decision.py) when there are.
Everything that came from a user (file names, folders, messages) is made inert Markdown
(`md`); nothing from a user goes into the YAML front matter."""

import html
import json
import re
from pathlib import Path

import yaml

from training.config import DEFAULT_MODEL
from training.jobs import rundir
from training.models.catalogue import hub_id


def md(value) -> str:
    """User text (file names, model folders, server messages) as inert Markdown: one line,
    HTML escaped, Markdown punctuation backslash-escaped so it cannot link, format or
    break a table."""
    text = html.escape(" ".join(str(value).split()), quote=True)
    text = re.sub(r"([\\`*_\[\]|~:])", r"\\\1", text)  # ':' too: no bare-URL autolinks
    return re.sub(r"^([#+=-])", r"\\\1", text)  # no heading or list at a line start


def read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _number(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return md(value)


def render(run_dir: Path, source: Path, cfg, checkpoint: str, kind: str, repo: str | None) -> str:
    """README.md for an adapter (kind "adapter") or a merged model: YAML front matter, then
    what it is, how it was trained, its metrics and evaluation, usage and limitations.
    source: the adapter folder exported; repo: the Hub id it goes to, if any."""
    base = hub_id(cfg.model)
    front = card_data(run_dir, cfg, kind, repo).to_yaml()
    base_text = f"`{base}`" if base else f"a local model folder ({md(Path(cfg.model).name)})"
    what = "A LoRA adapter for" if kind == "adapter" else "A fine-tuned version of"
    merged_note = "" if kind == "adapter" else " (the adapter merged into the base weights)"
    metrics = read_json(run_dir / rundir.METRICS) or read_json(source / rundir.METRICS)
    steps = f"{cfg.epochs:g} epochs" if cfg.max_steps == -1 else f"{cfg.max_steps} steps"
    if metrics.get("steps"):
        steps += f" ({metrics['steps']} optimizer steps)"
    rows = f"{metrics['train_examples']} training rows" if "train_examples" in metrics else ""
    if metrics.get("validation_examples"):
        rows += f", {metrics['validation_examples']} held out"
    lora = read_json(source / "adapter_config.json")  # what was trained, whatever the backend
    r, alpha = lora.get("r", cfg.lora_r), lora.get("lora_alpha", cfg.lora_alpha)
    data = f"{md(Path(cfg.data).name) or '?'} ({md(cfg.format or 'detected format')})"
    setup = [
        (
            "Method",
            f"{'QLoRA' if cfg.method == 'qlora' else 'LoRA'} r {_number(r)}, alpha "
            f"{_number(alpha)}, dropout {cfg.lora_dropout:g}, on {md(cfg.target_modules)}",
        ),
        (
            "Learning rate",
            f"{cfg.learning_rate:g}, {cfg.lr_scheduler} schedule, {cfg.warmup_ratio:.0%} warm-up",
        ),
        ("Length of training", steps),
        (
            "Batch",
            f"{cfg.batch_size} x {cfg.grad_accum} accumulation = "
            f"{cfg.batch_size * cfg.grad_accum} sequences per step",
        ),
        ("Max length", f"{cfg.max_length} tokens"),
        ("Data", data + (f": {rows}" if rows else "")),
        ("Checkpoint", md(checkpoint or "final")),
        ("Seed", str(cfg.seed)),
    ]
    lines = ["---", front.rstrip(), "---", "", f"# {md(repo or run_dir.name)}", ""]
    lines += [
        f"{what} {base_text}{merged_note}, fine-tuned with Tunesmith (supervised "
        "fine-tuning, chat format).",
        "",
        "## Training setup",
        "",
        "| Setting | Value |",
        "| --- | --- |",
    ]
    lines += [f"| {k} | {v} |" for k, v in setup]
    shown = {k: v for k, v in metrics.items() if isinstance(v, int | float | str) and v != ""}
    if shown:
        lines += ["", "## Training metrics", "", "| Metric | Value |", "| --- | --- |"]
        lines += [f"| {md(k)} | {_number(v)} |" for k, v in shown.items()]
    lines += _eval_section(run_dir)
    lines += _decision_section(run_dir)
    lines += _usage(kind, repo, base)
    lines += [
        "",
        "## Limitations",
        "",
        "- Trained on a small, task-specific dataset: expect it to do that task, not more.",
        "- It inherits the base model's limitations, biases and licence; check them.",
        "- The evaluation (if any) uses rows held out from the same data, which says "
        "little about other inputs. It was not evaluated for safety.",
    ]
    if cfg.model == DEFAULT_MODEL:
        lines.append(
            "- Trained on Tunesmith's bundled copy of the base model (a 4-bit GGUF, "
            "de-quantized); on the original weights the adapter's outputs may differ slightly."
        )
    return "\n".join(lines) + "\n"


METRICS = {  # report key -> (model-index metric type, name)
    "exact_match": ("exact_match", "Exact match"),
    "json_valid": ("json_valid", "Valid JSON"),
    "rouge_l": ("rouge", "ROUGE-L"),
    "perplexity": ("perplexity", "Perplexity"),
}


def card_data(run_dir: Path, cfg, kind: str, repo: str | None):
    """The front matter, as huggingface_hub's ModelCardData (never hand-written YAML): base
    model and its licence, library, task, the Hub dataset, tags, and a model-index with the
    tuned model's figures when the run was evaluated. Nothing typed by a user goes here: the
    evaluation data is named by its Hub id or as held-out rows."""
    from huggingface_hub import EvalResult, ModelCardData

    base = hub_id(cfg.model)
    dataset = _hub_dataset(cfg.data)
    method = "qlora" if cfg.method == "qlora" else "lora"
    results = []
    report = read_json(run_dir / "eval" / "report.json")
    tuned = report.get("tuned") if isinstance(report.get("tuned"), dict) else {}
    for key, (metric, name) in METRICS.items():
        value = tuned.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            results.append(
                EvalResult(
                    task_type="text-generation",
                    dataset_type=dataset or "custom",
                    dataset_name="Held-out rows of the training data",
                    metric_type=metric,
                    metric_value=round(float(value), 4),
                    metric_name=name,
                )
            )
    return ModelCardData(
        base_model=base,
        library_name="peft" if kind == "adapter" else "transformers",
        pipeline_tag="text-generation",
        license=base_license(cfg.model),
        datasets=[dataset] if dataset else None,
        tags=["peft", method, "trl", "sft", "tunesmith"],
        model_name=(repo or run_dir.name) if results else None,
        eval_results=results or None,
    )


def _hub_dataset(data: str) -> str | None:
    """OWNER/NAME when the run trained on a Hub dataset."""
    from training.data.hub import as_ref

    try:
        ref = as_ref(data or "")
    except Exception:
        return None
    return ref.repo if ref else None


def base_license(model: str) -> str | None:
    """The base model's licence from its own card (a local folder's README.md, or the Hub
    model's, from the cache or the Hub): None when unknown."""
    from training.models import bundled

    if model == DEFAULT_MODEL:
        return bundled.BUNDLED_LICENSE
    card = Path(model) / "README.md"
    if not card.is_file():
        card = _hub_card(hub_id(model))
    try:
        text = card.read_text(encoding="utf-8") if card else ""
    except OSError:
        return None
    match = re.match(r"---\n(.*?)\n---", text, re.S)
    try:
        meta = yaml.safe_load(match.group(1)) if match else None
    except yaml.YAMLError:
        return None
    value = meta.get("license") if isinstance(meta, dict) else None
    return value if isinstance(value, str) and re.fullmatch(r"[\w.+-]{1,64}", value) else None


def _hub_card(repo: str | None) -> Path | None:
    if not repo:
        return None
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    from training.paths import hub_caches, hub_offline

    for cache in hub_caches():
        found = try_to_load_from_cache(repo, "README.md", cache_dir=cache)
        if isinstance(found, str):
            return Path(found)
    if hub_offline():
        return None
    try:
        return Path(hf_hub_download(repo, "README.md"))
    except Exception:  # offline, gated, no card: the licence stays unknown
        return None


def _eval_section(run_dir: Path) -> list[str]:
    report = read_json(run_dir / "eval" / "report.json")
    if not report.get("verdict"):
        return []
    lines = ["", "## Evaluation", "", md(report["verdict"]), ""]
    sides = [
        s for s in ("base", "tuned", "few_shot", "retrieval") if isinstance(report.get(s), dict)
    ]
    lines += ["| Metric | " + " | ".join(sides) + " |", "| --- |" + " --- |" * len(sides)]
    for key in ("exact_match", "rouge_l", "json_valid", "loss", "perplexity", "prompt_tokens"):
        values = [report[s].get(key) for s in sides]
        if any(isinstance(v, int | float) for v in values):
            cells = [_number(v) if isinstance(v, int | float) else "–" for v in values]
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"{_number(report.get('rows', '?'))} rows from {md(Path(str(report.get('data', '?'))).name)}, "
        f"checkpoint {md(report.get('checkpoint', '?'))}, greedy decoding.",
    ]
    return lines


def _decision_section(run_dir: Path) -> list[str]:
    """decision.md one heading level down: it was written with its user text made inert."""
    try:
        text = (run_dir / "decision.md").read_text(encoding="utf-8")
    except OSError:
        return []
    body = text.strip().splitlines()[1:]  # its own title: the section heading replaces it
    return [
        "",
        "## Should you fine-tune at all?",
        *("#" + b if b.startswith("#") else b for b in body),
    ]


def _usage(kind: str, repo: str | None, base: str | None) -> list[str]:
    here = repo or "path/to/this/folder"
    if kind == "adapter":
        load = [
            f'base = AutoModelForCausalLM.from_pretrained("{base or "path/to/base-model"}")',
            f'model = PeftModel.from_pretrained(base, "{here}")',
            f'tokenizer = AutoTokenizer.from_pretrained("{here}")  # with the chat template',
        ]
        imports = ["from peft import PeftModel"]
    else:
        load = [
            f'model = AutoModelForCausalLM.from_pretrained("{here}")',
            f'tokenizer = AutoTokenizer.from_pretrained("{here}")',
        ]
        imports = []
    return [
        "",
        "## Usage",
        "",
        "```python",
        *imports,
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "",
        *load,
        'messages = [{"role": "user", "content": "Hello!"}]',
        "inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, "
        'return_dict=True, return_tensors="pt")',
        "output = model.generate(**inputs, max_new_tokens=128)",
        'print(tokenizer.decode(output[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True))',
        "```",
    ]
