"""The pure formatters: escaping of user data, grouping of findings, the verdict line."""

from components import format as fmt
from components import stats_format
from training.data.report import Finding, ValidationReport

SCRIPT = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def finding(level, row, code, message="m", hint="h", file=None):
    return Finding(level, row, code, message, hint, file)


def test_table_escapes_cells_and_headers():
    out = fmt.table_html([SCRIPT, "b"], [{SCRIPT: SCRIPT, "b": {"k": "<b>"}}], [1])
    assert "<script>" not in out and "<img" not in out
    assert "&lt;script&gt;" in out and "&lt;b&gt;" in out
    assert '<td class="ts-num">1</td>' in out


def test_long_cells_are_cut():
    out = fmt.table_html(["t"], [{"t": "x" * 1000}], [4])
    assert "x" * fmt.CELL_CHARS not in out and "…" in out


def test_report_groups_by_code_errors_before_warnings():
    report = ValidationReport(
        format="messages",
        rows=10,
        errors=[
            finding("error", 3, "unknown_role", "Message 2 has the role “bot”"),
            finding("error", 7, "unknown_role", "Message 1 has the role “bot”"),
            finding("error", 5, "empty_content", "The content is empty.", "Write the text"),
        ],
        warnings=[finding("warning", None, "few_examples", "Only 10 usable examples")],
        counts={"unknown_role": 2, "empty_content": 1, "few_examples": 1},
    )
    out = fmt.report_html(report)
    assert out.count('data-code="unknown_role"') == 1  # one section per code
    assert "rows 3, 7" in out and "row 5" in out and "the whole file" in out
    assert out.index("unknown_role") < out.index("empty_content") < out.index("few_examples")
    assert out.index("Errors") < out.index("Warnings")
    assert "How to fix: Write the text" in out
    assert "Fix 3 errors first" in fmt.verdict_html(report)


def test_report_escapes_messages_and_hints():
    report = ValidationReport(
        format=None, rows=1, errors=[finding("error", 1, SCRIPT, SCRIPT, SCRIPT)]
    )
    out = fmt.report_html(report)
    assert "<script>" not in out and "<img" not in out


def test_counts_beyond_the_capped_list_are_shown():
    errors = [finding("error", r, "unparseable_line") for r in range(1, 41)]
    report = ValidationReport("messages", 5000, errors=errors, counts={"unparseable_line": 4000})
    out = fmt.report_html(report)
    assert "4,000×" in out and f"and {4000 - fmt.ROWS_SHOWN:,} more" in out
    assert fmt.verdict(report) == (False, "Fix 4,000 errors first, then check again.")


def test_validation_file_rows_are_named():
    report = ValidationReport(
        "text", 3, errors=[finding("error", 2, "empty_content", file="validation")]
    )
    out = fmt.report_html(report)
    assert "validation file row 2" in out and "validation 2" in out


def test_verdict_ready_with_warnings():
    report = ValidationReport("alpaca", 1, warnings=[finding("warning", None, "few_examples")])
    ready, text = fmt.verdict(report)
    assert ready and text == "Ready to train: 1 example in alpaca format, 1 warning to look at."
    unreadable = ValidationReport(None, 0, readable=False)
    assert fmt.verdict(unreadable)[0] is False


def test_stats_tables():
    stats = {
        "examples": 120,
        "tokens_per_example": {
            "min": 5,
            "mean": 40.25,
            "median": 38,
            "p10": 10,
            "p90": 80,
            "max": 900,
        },
        "over_max_length": 2,
        "total_training_tokens": 48000,
        "recommended_epochs": 3,
        "split": {"train": 108, "validation": 12, "source": "<auto>"},
    }
    out = stats_format.stats_html(stats)
    assert "Tokens per example" in out and "40.2" in out and "48,000" in out
    assert "108 / 12" in out and "&lt;auto&gt;" in out


def test_histogram_marks_max_length_and_colours_bins_past_it():
    svg = stats_format.histogram_svg({"edges": [0, 100, 200, 300], "counts": [5, 3, 1]}, 200)
    assert svg.startswith("<svg") and "max length 200" in svg
    assert svg.count('class="ts-bar"') == 2 and svg.count('class="ts-bar-over"') == 1
    assert "No token lengths" in stats_format.histogram_svg(None, 100)


def test_histogram_keeps_its_axis_on_the_data_when_the_limit_is_far_away():
    svg = stats_format.histogram_svg({"edges": [0, 20, 40, 60], "counts": [5, 3, 1]}, 1024)
    assert "max length 1,024 (all fit)" in svg and 'class="ts-max"' not in svg
    assert ">60</text>" in svg  # the axis ends at the longest example, not at 1,024


def test_rendered_text_highlights_specials_and_escapes_the_rest():
    text = f"<|im_start|>user\n{SCRIPT}<|im_end|>\n"
    out = fmt.rendered_html(text, ["<|im_start|>", "<|im_end|>"], title="Row 1")
    assert out.count('<span class="ts-special">') == 2
    assert "&lt;|im_start|&gt;" in out and "<script>" not in out and "<img" not in out
