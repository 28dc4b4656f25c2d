"""The playground's example turns (training/chat/columns.py): the retriever finds a known
training example from a paraphrase, never returns the held-out row itself, and is built once
per run from the training split alone."""

from tests.assets import make_run
from training.chat import columns
from training.jobs import runs
from training.paths import runs_dir


def chat(question: str, answer: str, system: str | None = None) -> dict:
    head = [{"role": "system", "content": system}] if system else []
    return {
        "messages": head
        + [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    }


TRAIN = [
    chat("What is the capital of Zorbania?", "Quellport", "You answer geography questions."),
    chat("Who painted the ceiling of the Sistine Chapel?", "Michelangelo"),
    chat("How many legs does a spider have?", "Eight"),
    chat("What is the boiling point of water at sea level?", "100 °C"),
    chat("Which planet is known as the red planet?", "Mars"),
    {"messages": [{"role": "user", "content": "a question nobody answered"}]},
]


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_a_paraphrase_retrieves_its_training_example_as_prior_turns():
    found = columns.Retriever(TRAIN)
    assert len(found.chats) == 5  # the row without a reply cannot be an example
    assert found.nearest(ask("Zorbania: which city is its capital?"), 1) == [0]
    assert found.nearest(ask("Tell me the number of legs on a spider"), 2)[0] == 2
    turns = found.turns(ask("Name the red planet, please."), 2)
    assert [m["role"] for m in turns] == ["user", "assistant"] * 2  # no system message
    assert turns[-1]["content"] == "Mars"  # the best match last, next to the question
    # Only the last user turn is the question: earlier turns of the chat do not steer it.
    history = ask("How many legs does a spider have?") + [
        {"role": "assistant", "content": "Eight"},
        {"role": "user", "content": "And who painted the Sistine Chapel ceiling?"},
    ]
    assert found.nearest(history, 1) == [1]


def test_the_held_out_row_is_never_its_own_example():
    found = columns.Retriever(TRAIN)
    row = TRAIN[4]
    picked = found.nearest(row["messages"][:1], 3, leave_out=row)
    assert 4 not in picked and len(picked) == 3
    assert 4 in found.nearest(row["messages"][:1], 3)  # without leave_out it is the best match
    spaced = chat(" Which planet is  known as the red planet? ", "Mars")  # same row, re-spaced
    assert 4 not in found.nearest(ask("red planet"), 5, leave_out=spaced)


def test_nothing_to_match_still_gives_examples_in_file_order():
    found = columns.Retriever(TRAIN)
    assert found.nearest(ask("the of and"), 2) == [0, 1]  # only stop words: no score
    assert columns.Retriever([chat("?", "!"), chat("a", "b")]).nearest(ask("hello"), 5) == [0, 1]
    assert columns.Retriever([]).turns(ask("hello"), 3) == []


def test_run_retriever_uses_the_training_split_and_is_built_once(tiny_model_dir):
    run = make_run(runs_dir() / "r", tiny_model_dir)
    train, val = runs.run_examples(run)
    found = columns.run_retriever(run)
    assert columns.run_retriever(run) is found  # cached per run
    assert [c[0]["content"] for c in found.chats] == [e["messages"][0]["content"] for e in train]
    held_out = {e["messages"][0]["content"] for e in val}
    for e in val:
        picked = found.turns(e["messages"][:1], 3)
        assert not held_out & {m["content"] for m in picked}  # never a validation row
