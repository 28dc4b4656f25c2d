"""The catalogue of findings: a group of rows sharing a code never states one row's facts."""

from training.data.codes import CATALOGUE, SUMMARIES, group_text, make_finding


def test_every_code_whose_message_names_a_rows_fact_has_a_generic_summary():
    for code, (_, message, _) in CATALOGUE.items():
        if "{" in message.replace("{{", ""):
            assert code in SUMMARIES, code
            assert "{" not in SUMMARIES[code], code
    assert set(SUMMARIES) <= set(CATALOGUE)


def test_a_group_reads_its_own_message_only_when_every_row_says_the_same():
    copies = [make_finding("duplicate_row", r, original=118) for r in (119, 120)]
    assert group_text("duplicate_row", copies, 2)[0] == "This example is an exact copy of row 118."
    mixed = [*copies, make_finding("duplicate_row", 121, original=7)]
    summary, hint = group_text("duplicate_row", mixed, 3)
    assert summary == "These examples are exact copies of earlier rows." and "118" not in summary
    assert hint == CATALOGUE["duplicate_row"][2]
    # rows counted beyond the stored ones may differ: the group is generic then too
    assert group_text("duplicate_row", copies, 14)[0] == SUMMARIES["duplicate_row"]
    empty = [make_finding("no_assistant_message", r) for r in (1, 2)]
    assert group_text("no_assistant_message", empty, 500)[0].startswith("There is no assistant")
