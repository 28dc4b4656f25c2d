"""Tiny test assets built in seconds: a byte-level BPE tokenizer with a ChatML template
and a ~0.2 M-parameter Llama model (it learns nothing useful; it exercises the pipeline),
and `make_run`, a run directory with a perturbed LoRA adapter, a checkpoint, config and data
that the chat, playground, evaluation and export tests share; `preload_hub_cache`, a model
laid out in the Hugging Face cache as a Space's build preloads it."""

import json
import shutil
import time
from pathlib import Path

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Llama-3-style template (header ids, eot), for masking tests on a second template family.
LLAMA3 = (
    "{{ '<|begin_of_text|>' }}"
    "{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]
LLAMA3_SPECIALS = [
    "<|begin_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|pad|>",
]

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Fine-tuning adapts a pretrained language model to new data.",
    "user assistant system: What is the capital of France? Paris.",
    "Write a haiku about autumn leaves falling softly to the ground.",
    '{"name": "Ada", "age": 36, "languages": ["en", "fr"]}',
    "0123456789 + - * / = ( ) [ ] { } < > , . ; : ! ? ' \"",
] * 50


def build_tokenizer(out_dir: Path, template: str = "chatml"):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = SPECIALS if template == "chatml" else LLAMA3_SPECIALS
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2048,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    eos = "<|im_end|>" if template == "chatml" else "<|eot_id|>"
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=eos,
        pad_token="<|pad|>",
        bos_token=None if template == "chatml" else "<|begin_of_text|>",
        unk_token=None,
    )
    fast.chat_template = CHATML if template == "chatml" else LLAMA3
    fast.save_pretrained(out_dir)
    return fast


def build_tiny_model(out_dir: Path, template: str = "chatml") -> Path:
    """Write a tokenizer + random LlamaForCausalLM to out_dir; return out_dir."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(out_dir, template)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out_dir)
    return out_dir


def wait_for(predicate, timeout: float = 20.0, what: str = "condition", interval: float = 0.05):
    """Poll predicate until it returns something truthy; return that, or fail after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


QUESTIONS = ["capital of France", "haiku about autumn", "quick brown fox", "language model"]


def answer(q: str) -> str:  # a rigid JSON answer format
    return json.dumps({"topic": q, "words": len(q.split())})


def make_run(root: Path, model_dir: Path, rows: int = 12, seed: int = 0) -> Path:
    """RUN_DIR with config.yaml, data.jsonl, adapter/ (+ tokenizer) and checkpoints/checkpoint-2."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.config import RunConfig

    run = Path(root)
    run.mkdir(parents=True, exist_ok=True)
    data = run / "data.jsonl"
    with open(data, "w") as f:
        for i in range(rows):
            q = QUESTIONS[i % len(QUESTIONS)] + f" {i}"
            chat = [
                {"role": "user", "content": f"Describe: {q}"},
                {"role": "assistant", "content": answer(q)},
            ]
            f.write(json.dumps({"messages": chat}) + "\n")
    RunConfig(model=str(model_dir), data=str(data), validation_split=0.25, max_length=256).to_yaml(
        run / "config.yaml"
    )
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM")
    torch.manual_seed(seed)  # lora_A starts random: the same seed, the same adapter
    peft_model = get_peft_model(model, lora)
    gen = torch.Generator().manual_seed(seed)
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:  # B starts at zero (adapter = identity): perturb it so outputs change
            p.data = torch.randn(p.shape, generator=gen) * 2.0
    tok = AutoTokenizer.from_pretrained(model_dir)
    peft_model.save_pretrained(run / "adapter")
    tok.save_pretrained(run / "adapter")
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:
            p.data = p.data * -0.5  # the checkpoint is a different adapter
    peft_model.save_pretrained(run / "checkpoints" / "checkpoint-2")
    return run


MSGS = [{"role": "user", "content": "Describe: capital of France"}]


def preload_hub_cache(cache: Path, repo_id: str, folder: Path) -> Path:
    """A model in the Hugging Face cache's standard layout, as a Space's preload_from_hub
    leaves it at build time: models--OWNER--NAME/{refs/main, snapshots/REVISION/...}."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(folder, repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    return repo
