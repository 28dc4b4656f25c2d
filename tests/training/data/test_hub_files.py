"""Configurations and splits from a Hub repository's file names and card, as `datasets` does."""

from training.data.hub_files import glob_regex, infer_splits, match, split_files


def test_globs_keep_single_stars_inside_a_folder():
    assert glob_regex("data/*.jsonl").fullmatch("data/a.jsonl")
    assert not glob_regex("data/*.jsonl").fullmatch("data/sub/a.jsonl")
    assert glob_regex("data/**").fullmatch("data/sub/a.jsonl")
    assert glob_regex("**/train[-._ 0-9]*").fullmatch("train.jsonl")
    assert glob_regex("**/train[-._ 0-9]*").fullmatch("a/b/train-00.parquet")
    assert not glob_regex("**/train[-._ 0-9]*").fullmatch("trainer.jsonl")


def test_hidden_files_and_special_folders_only_when_named():
    files = [".hidden/a.jsonl", "__pycache__/b.jsonl", "c.jsonl"]
    assert match("**", files) == ["c.jsonl"]
    assert match(".hidden/*", files) == [".hidden/a.jsonl"]


def test_split_names_in_files_folders_and_shards():
    assert infer_splits(["train.jsonl", "valid.jsonl", "my_test.csv", "notes.txt"]) == {
        "train": ["train.jsonl"],
        "validation": ["valid.jsonl"],
        "test": ["my_test.csv"],
    }  # notes.txt names no split: once any file does, it belongs to none
    assert infer_splits(["data/train/a.jsonl", "data/dev/b.jsonl", "train_notes.jsonl"]) == {
        "train": ["data/train/a.jsonl"],
        "validation": ["data/dev/b.jsonl"],
    }  # a folder named after a split wins over file names
    shards = ["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"]
    shards.append("data/extra-00000-of-00001.parquet")
    assert infer_splits(shards) == {"train": shards[:2], "extra": shards[2:]}
    assert infer_splits(["eval.jsonl"]) == {"test": ["eval.jsonl"]}  # as `datasets` reads it
    assert infer_splits(["a.jsonl", "b/c.csv"]) == {"train": ["a.jsonl", "b/c.csv"]}


def test_card_configs_name_files_per_split_default_first():
    files = ["README.md", "x/a.jsonl", "x/b.jsonl", "y/train.csv", "y/test.csv", "z.py"]
    card = {
        "configs": [
            {"config_name": "x", "data_files": "x/*.jsonl"},
            {"config_name": "y", "default": True, "data_dir": "y"},
            {"config_name": "z", "data_files": {"train": "x/a.jsonl", "test": ["x/b.jsonl"]}},
        ]
    }
    assert split_files(files, card) == {
        "y": {"train": ["y/train.csv"], "test": ["y/test.csv"]},
        "x": {"train": ["x/a.jsonl", "x/b.jsonl"]},
        "z": {"train": ["x/a.jsonl"], "test": ["x/b.jsonl"]},
    }
    assert split_files(files, {}) == {"default": {"train": ["y/train.csv"], "test": ["y/test.csv"]}}
