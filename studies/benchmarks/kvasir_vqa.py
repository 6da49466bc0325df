"""`kvasir-vqa-x1`: endoscopy image + question -> free-text answer (Kvasir-VQA-x1 layout).

Three published forms, in the dataset folder or its data/ folder:

* the Hugging Face parquet (`data/train-00000-of-00001.parquet`, `data/test-...`) with the
  fields `img_id, complexity, question, answer, original, question_class` (and `image`);
* a CSV export of it (`data/train.csv`, `data/test.csv` as pandas `df.to_csv` writes them:
  an unnamed index column, `question_class` written as a Python or numpy list);
* the JSONL export the dataset README writes (`Kvasir-VQA-x1-{split}.jsonl`, one
  `{"messages": [user "<image>question", assistant answer], "images": [path]}` a line); it
  has no complexity or question class. The `-aug.jsonl` files of the README (weakly
  augmented images, the transformed track) are read instead with the option
  `track=transformed`.

The split comes from a `split` column or else from the file name (a `train`/`test` word in
it). Images are `images/<img_id>.jpg` (the option `images` names another folder); a JSONL
image path, absolute or relative to another machine, is found by its trailing folder and
file name under the dataset folder. A case is one question; its key is derived from the
image and the question text (never from a row position), so reordered or partial downloads
keep every key on its question.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from studies.benchmarks.base import (
    IMAGE_SUFFIXES,
    SPLIT_ALIASES,
    SPLITS,
    CaseRecord,
    LoadResult,
    RowProblem,
    content_key,
    normalise_split,
    option_path,
)
from studies.benchmarks.tables import (
    Table,
    media_problem,
    missing_columns,
    read_table,
    text_value,
)

REQUIRED = [("img_id",), ("question",), ("answer",)]
JSONL_REQUIRED = [("messages",), ("images",)]
DATA_SUFFIXES = (".parquet", ".jsonl", ".csv")
# The README's two evaluation tracks: original images, and weakly augmented ones.
TRACKS = ("standard", "transformed")
AUGMENTED_SUFFIX = "-aug"
IMAGE_TOKEN = "<image>"


@dataclass(frozen=True)
class KvasirVQALoader:
    name: str = "kvasir-vqa-x1"
    task: str = "vqa"
    synthetic: bool = False
    description: str = (
        "Kvasir-VQA-x1: GI endoscopy image + question -> free-text answer, with complexity "
        "and question classes (Hugging Face parquet, its CSV export or the README's "
        "Kvasir-VQA-x1-{split}.jsonl; images/<img_id>.jpg; option track=transformed)."
    )

    def load(self, root: Path, options: dict[str, Any]) -> LoadResult:
        images_dir = str(options.get("images", "images")).strip("/") or "images"
        option_path(root, {"images": images_dir}, "images")  # stays inside the root
        track = str(options.get("track", "standard")).strip().lower()
        if track not in TRACKS:
            return LoadResult(
                [],
                [
                    RowProblem(
                        str(root), None, f"unknown track {track!r}; use {' or '.join(TRACKS)}"
                    )
                ],
            )
        files = _data_files(root, track)
        if not files:
            wanted = "-aug.jsonl" if track == "transformed" else ".parquet, .csv or .jsonl"
            return LoadResult(
                [],
                [
                    RowProblem(
                        str(root), None, f"no {wanted} files in the folder or its data/ folder"
                    )
                ],
            )
        problems: list[RowProblem] = []
        collected: list[tuple[str, str, int, dict[str, Any]]] = []  # split, file, row, values
        for path in files:
            table = read_table(path, root)
            problems.extend(table.problems)
            if not table.rows:
                continue
            if "messages" in table.columns or "images" in table.columns:
                missing = missing_columns(table, JSONL_REQUIRED)
                rows = None if missing else _chat_rows(root, images_dir, table, problems)
            else:
                missing = missing_columns(table, REQUIRED)
                rows = table.rows
            if missing:
                problems.append(missing)
                continue
            assert rows is not None
            file_split = _split_from_name(path.name)
            if "split" not in table.columns and file_split is None:
                problems.append(
                    RowProblem(
                        table.file,
                        None,
                        "cannot tell the split: name the file train*/test* or add a split column",
                    )
                )
                continue
            for row_number, row in rows:
                # A split cell wins; an empty one falls back to the file name.
                raw = text_value(row.get("split")) or file_split
                split = normalise_split(raw)
                if split is None:
                    problems.append(
                        RowProblem(
                            table.file, row_number, f"unknown split {raw!r}; use train or test"
                        )
                    )
                    continue
                collected.append((split, table.file, row_number, row))
        # Train before val before test: the order problems and cases are listed in.
        collected.sort(key=lambda item: SPLITS.index(item[0]))
        records, row_problems = _records(root, images_dir, track, collected)
        return LoadResult(records, problems + row_problems)


def case_key(img_id: str, question: str) -> str:
    """The key of one question on one image: the img_id and a digest of the question
    (`content_key`).

    Content, not position: the same question on the same image gets the same key whatever
    the order of the rows or the files downloaded.
    """
    return content_key(img_id, question)


def _question_identity(img_id: str, question: str) -> tuple[str, str]:
    # Case and spacing do not make another question on the same image.
    return img_id, " ".join(question.split()).lower()


def _data_files(root: Path, track: str) -> list[Path]:
    files = []
    for folder in (root, root / "data"):
        if folder.is_dir():
            files.extend(
                p
                for p in sorted(folder.iterdir())
                if p.is_file()
                and p.suffix in DATA_SUFFIXES
                and _is_augmented(p) == (track == "transformed")
            )
    return files


def _is_augmented(path: Path) -> bool:
    return path.suffix == ".jsonl" and path.stem.lower().endswith(AUGMENTED_SUFFIX)


def _split_from_name(name: str) -> str | None:
    """The split a file name names: `train-00000-of-00001.parquet`, `Kvasir-VQA-x1-test.jsonl`,
    `data/train.csv` (None when it names none, or two different ones)."""
    words = re.split(r"[-_.\s]+", name.lower())
    found = {SPLIT_ALIASES[word] for word in words if word in SPLIT_ALIASES}
    return found.pop() if len(found) == 1 else None


def _image_path(root: Path, images_dir: str, img_id: str) -> str:
    if Path(img_id).suffix.lower() in IMAGE_SUFFIXES:
        return f"{images_dir}/{img_id}"
    for suffix in (".jpg", ".jpeg", ".png"):
        if (root / images_dir / f"{img_id}{suffix}").exists():
            return f"{images_dir}/{img_id}{suffix}"
    return f"{images_dir}/{img_id}.jpg"


# --- the README's JSONL export ------------------------------------------------------


def _chat_rows(
    root: Path, images_dir: str, table: Table, problems: list[RowProblem]
) -> list[tuple[int, dict[str, Any]]]:
    """`messages` + `images` lines as rows of the dataset's own fields (img_id, question,
    answer, the image's path under the root); a line that cannot be read is a problem."""
    rows = []
    for row_number, line in table.rows:
        try:
            question, answer = _question_and_answer(line.get("messages"))
            image = _one_image(line.get("images"))
        except ValueError as exc:
            problems.append(RowProblem(table.file, row_number, str(exc)))
            continue
        values = {
            "img_id": _image_stem(image),
            "question": question,
            "answer": answer,
            "image_path": _local_image(root, images_dir, image),
        }
        if "split" in line:
            values["split"] = line["split"]
        rows.append((row_number, values))
    return rows


def _message_text(content: Any) -> str:
    if isinstance(content, list):  # OpenAI-style parts: keep the text parts
        content = " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "").replace(IMAGE_TOKEN, "").strip()


def _question_and_answer(messages: Any) -> tuple[str, str]:
    if not isinstance(messages, list):
        raise ValueError("messages must be a list of {role, content} objects")
    question = answer = None
    for message in messages:
        if not isinstance(message, dict):
            raise ValueError("messages must be a list of {role, content} objects")
        role = message.get("role")
        if role == "user" and question is None:
            question = _message_text(message.get("content"))
        elif role == "assistant" and question is not None and answer is None:
            answer = _message_text(message.get("content"))
    if question is None:
        raise ValueError("messages hold no user message (the question)")
    if answer is None:
        raise ValueError("messages hold no assistant message after the question (the answer)")
    return question, answer


def _one_image(images: Any) -> str:
    if isinstance(images, str):
        images = [images]
    if not isinstance(images, list) or len(images) != 1 or not str(images[0]).strip():
        raise ValueError("images must list exactly one image path")
    return str(images[0]).strip()


def _path_parts(raw: str) -> list[str]:
    pure = PureWindowsPath(raw) if "\\" in raw else PurePosixPath(raw)
    return [part for part in pure.parts if part not in (pure.anchor, "", ".", "..")]


def _image_stem(raw: str) -> str:
    parts = _path_parts(raw)
    return Path(parts[-1]).stem if parts else ""


def _local_image(root: Path, images_dir: str, raw: str) -> str:
    """The JSONL's image path under the dataset folder: the longest trailing part of it that
    exists there (`/home/x/Kvasir-VQA-x1/images/a.jpg` -> `images/a.jpg`), else
    `<images>/<file name>` (which the image check then reports as missing)."""
    parts = _path_parts(raw)
    for start in range(len(parts)):
        candidate = "/".join(parts[start:])
        if (root / candidate).is_file():
            return candidate
    return f"{images_dir}/{parts[-1]}" if parts else images_dir


# --- field values -------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    """JSON-able value: parsed JSON text for list-like strings, lists as lists."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, tuple):
        return list(value)
    return value


def _question_classes(value: Any) -> list[str]:
    """`question_class` as a list of class names, from a parquet list, JSON text, a Python
    list (`['a', 'b']`) or the numpy form pandas writes to CSV (`['a' 'b']`)."""
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if str(v).strip()]
    text = text_value(value)
    if not text.startswith("["):
        return [text] if text else []
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        parsed = None
    if isinstance(parsed, list):
        return [str(v).strip() for v in parsed if str(v).strip()]
    # A Python or numpy list: the quoted names (numpy leaves out the commas, so the text is
    # no Python literal of a list).
    return [a or b for a, b in re.findall(r"'([^']*)'|\"([^\"]*)\"", text) if a or b]


def _complexity(value: Any) -> Any:
    """The complexity level (1-3) as a number, whether the file held 2 or '2'."""
    text = text_value(value)
    return int(text) if text.isdigit() else value


def _meta(img_id: str, track: str, row: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {"img_id": img_id}
    if track != "standard":
        meta["track"] = track
    if text_value(row.get("complexity")):
        meta["complexity"] = _complexity(row["complexity"])
    if row.get("question_class") is not None and (
        classes := _question_classes(row["question_class"])
    ):
        meta["question_class"] = classes
    if row.get("original") not in (None, ""):
        meta["original"] = _json_value(row["original"])
    return meta


def _records(
    root: Path, images_dir: str, track: str, collected: list[tuple[str, str, int, dict[str, Any]]]
) -> tuple[list[CaseRecord], list[RowProblem]]:
    problems: list[RowProblem] = []
    records: list[CaseRecord] = []
    image_checks: dict[str, str | None] = {}
    image_paths: dict[str, str] = {}
    seen: dict[tuple[str, str], tuple[str, str, int]] = {}  # question -> split, file, row
    for split, file, row_number, row in collected:
        img_id = text_value(row.get("img_id"))
        question = text_value(row.get("question"))
        answer = text_value(row.get("answer"))
        messages = []
        if not img_id:
            messages.append("img_id is empty")
        if not question:
            messages.append("question is empty")
        if not answer:
            messages.append("answer is empty")
        relative = text_value(row.get("image_path"))
        if img_id:
            if not relative:
                if img_id not in image_paths:
                    image_paths[img_id] = _image_path(root, images_dir, img_id)
                relative = image_paths[img_id]
            if relative not in image_checks:
                image_checks[relative] = media_problem(root, relative, "image")
            if image_checks[relative]:
                messages.append(f"image for img_id {img_id!r}: {image_checks[relative]}")
        identity = _question_identity(img_id, question)
        if not messages and identity in seen:
            first_split, first_file, first_row = seen[identity]
            where = f"row {first_row}" if first_file == file else f"{first_file}, row {first_row}"
            if first_split == split:
                messages.append(
                    f"duplicate question {question!r} for img_id {img_id!r} (first seen in {where})"
                )
            else:
                messages.append(
                    f"question {question!r} for img_id {img_id!r} is in {first_split} too "
                    f"({where}); a question belongs to one split"
                )
        if messages:
            problems.extend(RowProblem(file, row_number, m) for m in messages)
            continue
        seen[identity] = (split, file, row_number)
        records.append(
            CaseRecord(
                case_key=case_key(img_id, question),
                split=split,
                modality="image",
                media=[relative],
                references=[answer],
                question=question,
                meta=_meta(img_id, track, row),
            )
        )
    return records, problems


LOADER = KvasirVQALoader()
