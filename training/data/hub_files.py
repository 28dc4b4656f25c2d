"""Which files make up each configuration and split of a Hub dataset, and what the local
Hugging Face cache holds of it: the `datasets` library's conventions, without the library.

    split_files(files, card)        -> {config: {split: [path, ...]}}, the default first
    cached_commit(repo, revision)   -> (cache folder, sha) or None
    cached_files(folder, sha)       -> {path: size} of one snapshot
    cached_path(repo, sha, path)    -> the file in a cache, or None

A card's `configs:` (the README's YAML front matter) names each configuration's data_files
per split: a pattern, a list of them, or a list of {split, path}; `data_dir` is the folder
they are relative to, `default: true` marks the default configuration. Without `configs:`
there is one configuration, "default", whose splits come from the names as `datasets`
infers them, the first rule that finds anything winning: sharded names
(data/train-00000-of-00002.parquet), then a folder named after a split, then a file name
holding one (train, training; validation, valid, dev, val; test, testing, eval, evaluation;
between non-letters), and failing those every data file is train. Only files with a data
suffix count (README.md, scripts and licences never do), and hidden files and folders and
folders starting with "__" only when a pattern names them.
"""

import re
from pathlib import Path, PurePosixPath

from training.paths import hub_caches

from .load import SUFFIXES

SHA = re.compile(r"[0-9a-f]{40}")
SPLIT_WORDS = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "dev", "val"),
    "test": ("test", "testing", "eval", "evaluation"),
}
SEP = "[-._ 0-9]"  # what may stand around a split's name
DIR_PATTERNS = ("**/{w}/**", "**/{w}" + SEP + "*/**", "**/*" + SEP + "{w}/**")
DIR_PATTERNS += ("**/*" + SEP + "{w}" + SEP + "*/**",)
FILE_PATTERNS = ("**/{w}" + SEP + "*", "**/*" + SEP + "{w}" + SEP + "*")
SHARDED = re.compile(r"data/(?P<split>\w+(?:\.\w+)*)-\d{5}-of-\d{5}[^/]*\.[^/]*")
# Data that `datasets` reads and this package does not: a split of these is refused by name.
OTHER_DATA = {
    ".arrow",
    ".lance",
    ".zip",
    ".tar",
    ".tgz",
    ".bz2",
    ".xz",
    ".zst",
    ".7z",
    ".lz4",
    ".h5",
    ".hdf5",
    ".npy",
    ".npz",
    ".tfrecord",
    ".xml",
    ".pdf",
    ".jpg",
    ".jpeg",
    ".png",
    ".gif",
    ".webp",
    ".bmp",
    ".tif",
    ".tiff",
    ".wav",
    ".mp3",
    ".flac",
    ".ogg",
    ".m4a",
    ".opus",
    ".mp4",
    ".avi",
    ".mkv",
    ".webm",
    ".mov",
    ".eval",
    ".xlsx",
    ".xls",
}
NOT_DATA = {"README.md", "config.json", "dataset_info.json", "dataset_infos.json"}


def suffix(path: str) -> str:
    """The data suffix of a file name: .jsonl for x.jsonl and x.jsonl.gz."""
    suffixes = [s.lower() for s in PurePosixPath(path).suffixes]
    if suffixes[-1:] == [".gz"] and len(suffixes) > 1:
        return suffixes[-2]
    return suffixes[-1] if suffixes else ""


def readable(path: str) -> bool:
    return suffix(path) in SUFFIXES


def is_data(path: str) -> bool:
    name = PurePosixPath(path)
    safe = ".." not in name.parts and not name.is_absolute()
    return safe and name.name not in NOT_DATA and (readable(path) or suffix(path) in OTHER_DATA)


def glob_regex(pattern: str) -> re.Pattern:
    """A glob as `datasets` resolves it: * and ? stay inside a folder, ** crosses them."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] in "*?":
            out.append("[^/]*" if pattern[i] == "*" else "[^/]")
            i += 1
        elif pattern[i] == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end].replace("\\", "\\\\")
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def _hidden(parts) -> int:
    return sum(p.startswith(".") and set(p) != {"."} for p in parts)


def _special(parts) -> int:
    return sum(p.startswith("__") for p in parts)


def match(pattern: str, files: list[str]) -> list[str]:
    """The files a pattern names, hidden and "__" folders only when it names them too."""
    regex, shape = glob_regex(pattern.lstrip("/")), PurePosixPath(pattern.lstrip("/"))
    found = []
    for f in files:
        path = PurePosixPath(f)
        hidden = _hidden(path.parts) == _hidden(shape.parts)
        special = _special(path.parent.parts) == _special(shape.parent.parts)
        if hidden and special and regex.fullmatch(f):
            found.append(f)
    return found


def infer_splits(files: list[str]) -> dict[str, list[str]]:
    """Splits from file and folder names, as `datasets` infers them for a repository
    without `configs:` (see the module docstring); train, validation, test first."""
    sharded: dict[str, list[str]] = {}
    for f in files:
        if m := SHARDED.fullmatch(f):
            sharded.setdefault(m["split"], []).append(f)
    if sharded:
        return {s: sharded[s] for s in sorted(sharded, key=_split_order)}
    for shapes in (DIR_PATTERNS, FILE_PATTERNS):
        found = {}
        for split, words in SPLIT_WORDS.items():
            patterns = [shape.format(w=w) for w in words for shape in shapes]
            if hits := sorted({f for p in patterns for f in match(p, files)}):
                found[split] = hits
        if found:
            return found
    every = match("**", files)
    return {"train": sorted(every)} if every else {}


def _split_order(split: str) -> tuple:
    known = list(SPLIT_WORDS)
    return (known.index(split), "") if split in known else (len(known), split)


def _patterns(data_files) -> dict[str, list[str]]:
    """A card's data_files as {split: [pattern, ...]} (a bare pattern or list: train)."""
    if isinstance(data_files, str):
        return {"train": [data_files]}
    if isinstance(data_files, dict):
        return {str(k): v if isinstance(v, list) else [v] for k, v in data_files.items()}
    if isinstance(data_files, list) and all(isinstance(e, dict) for e in data_files):
        out = {}
        for entry in data_files:
            path = entry.get("path", [])
            out[str(entry.get("split", "train"))] = path if isinstance(path, list) else [path]
        return out
    return {"train": [str(p) for p in data_files or []]}


def split_files(files: list[str], card: dict) -> dict[str, dict[str, list[str]]]:
    """{config: {split: [file, ...]}} of a repository at one commit; the default config
    first. See the module docstring for the rules."""
    data = sorted(f for f in files if is_data(f))
    configs = card.get("configs") if isinstance(card, dict) else None
    if not isinstance(configs, list) or not configs:
        return {"default": infer_splits(data)}
    out: dict[str, dict[str, list[str]]] = {}
    entries = [c for c in configs if isinstance(c, dict)]
    entries.sort(key=lambda c: not c.get("default"))  # the default first, else card order
    for entry in entries:
        base = str(entry.get("data_dir") or "").strip("/")
        inside = [f[len(base) + 1 :] for f in data if f.startswith(base + "/")] if base else data
        if entry.get("data_files") is None:
            splits = infer_splits(inside)
        else:
            splits = {
                split: sorted({f for p in patterns for f in match(str(p), inside)})
                for split, patterns in _patterns(entry["data_files"]).items()
            }
        prefix = base + "/" if base else ""
        name = str(entry.get("config_name", "default"))
        out[name] = {s: [prefix + f for f in fs] for s, fs in splits.items()}
    return out


def repo_folder(repo: str) -> str:
    return "datasets--" + repo.replace("/", "--")


def cached_commit(repo: str, revision: str) -> tuple[Path, str] | None:
    """(the repository's cache folder, the commit's sha) where a cache holds that revision."""
    for cache in hub_caches():
        folder = cache / repo_folder(repo)
        ref = folder / "refs" / revision
        if ref.is_file():
            sha = ref.read_text(encoding="utf-8").strip()
        elif SHA.fullmatch(revision):
            sha = revision
        else:
            continue
        if SHA.fullmatch(sha) and (folder / "snapshots" / sha).is_dir():
            return folder, sha
    return None


def cached_files(folder: Path, sha: str) -> dict[str, int]:
    """{path: size} of every file one snapshot holds (links to blobs followed)."""
    root = folder / "snapshots" / sha
    return {
        p.relative_to(root).as_posix(): p.stat().st_size
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def cached_path(repo: str, sha: str, path: str) -> Path | None:
    for cache in hub_caches():
        local = cache / repo_folder(repo) / "snapshots" / sha / path
        if local.is_file():
            return local
    return None


def cached_revisions(repo: str) -> list[str]:
    """The branches and tags a cache knows for a repository (refs/NAME files), main first."""
    names = {"main"}
    for cache in hub_caches():
        refs = cache / repo_folder(repo) / "refs"
        if refs.is_dir():
            names |= {p.relative_to(refs).as_posix() for p in refs.rglob("*") if p.is_file()}
    return sorted(names, key=lambda n: (n != "main", n))
