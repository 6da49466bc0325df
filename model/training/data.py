"""Training data: SFT examples and preference pairs as TRL vision datasets, and their hashes.

The prompt messages are the ones generation sends (`model.prompts`), so training and
generation see the same input. Every problem a user can cause is a `TrainingDataError`
naming the file, the row and the field.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.prompts import PromptTemplate

PREFERENCE_COLUMNS = ("prompt", "chosen", "rejected", "images")


class TrainingDataError(ValueError):
    """Training data a user supplied is unusable; the message names the file, row and field."""


@dataclass
class SFTExample:
    """One supervised example: images, the target report (or answer), an optional question."""

    images: list[Path]
    response: str
    question: str | None = None
    key: str = ""


def prompt_messages(
    template: PromptTemplate, n_images: int, question: str | None = None
) -> list[dict[str, Any]]:
    """The chat prompt in TRL's vision format: system text, then user image blocks and text.

    Every content is a list of blocks (never a bare string) so that the column has one Arrow
    type across rows.
    """
    messages: list[dict[str, Any]] = []
    if template.system:
        messages.append({"role": "system", "content": [{"type": "text", "text": template.system}]})
    blocks: list[dict[str, Any]] = [{"type": "image", "text": None} for _ in range(n_images)]
    blocks.append({"type": "text", "text": template.user_text(question)})
    messages.append({"role": "user", "content": blocks})
    return messages


def assistant_message(text: str) -> list[dict[str, Any]]:
    return [{"role": "assistant", "content": [{"type": "text", "text": text}]}]


def _image_entry(path: Path) -> dict[str, Any]:
    return {"bytes": Path(path).read_bytes(), "path": Path(path).name}


def _hash_update_json(digest: Any, value: Any) -> None:
    digest.update(json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode())


def _check_image(path: Path, where: str) -> None:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise TrainingDataError(f"{where}: image file not found: {path}")
    try:
        with Image.open(path) as img:
            img.verify()
    except (UnidentifiedImageError, OSError) as exc:
        raise TrainingDataError(f"{where}: not a readable image: {path} ({exc})") from None


def sft_dataset(examples: Sequence[SFTExample], template: PromptTemplate):
    """SFT examples as a prompt-completion vision dataset (images embedded as bytes)."""
    from datasets import Dataset, Image, List

    if not examples:
        raise TrainingDataError("no SFT examples: the training split is empty")
    rows = []
    for i, ex in enumerate(examples):
        where = f"example {i} ({ex.key or 'no key'})"
        if not ex.response or not ex.response.strip():
            raise TrainingDataError(f"{where}: field 'response' is empty")
        for p in ex.images:
            _check_image(Path(p), where)
        rows.append(
            {
                "prompt": prompt_messages(template, len(ex.images), ex.question),
                "completion": assistant_message(ex.response.strip()),
                "images": [_image_entry(Path(p)) for p in ex.images],
                "key": ex.key,
            }
        )
    return Dataset.from_list(rows).cast_column("images", List(Image()))


def dataset_hash(dataset) -> str:
    """sha256 over every row's text columns and image bytes (order-sensitive)."""
    from datasets import Image, List

    digest = hashlib.sha256()
    plain = dataset
    if "images" in dataset.column_names:
        plain = dataset.cast_column("images", List(Image(decode=False)))
    text_columns = [
        c for c in ("prompt", "completion", "chosen", "rejected") if c in plain.column_names
    ]
    for row in plain:
        _hash_update_json(digest, {c: row[c] for c in text_columns})
        for image in row.get("images") or []:
            data = image.get("bytes")
            if data is None and image.get("path"):
                data = Path(image["path"]).read_bytes()
            digest.update(hashlib.sha256(data or b"").digest())
    return digest.hexdigest()


def preference_rows_to_dataset(rows: list[dict[str, Any]], base_dir: Path | None, source: str):
    """Validated preference rows (images as file paths) to a Dataset with embedded images.

    Raises TrainingDataError naming the source, the row and the field of the first bad row.
    """
    from datasets import Dataset, Image, List

    if not rows:
        raise TrainingDataError(f"{source}: no preference rows")
    clean = []
    for i, row in enumerate(rows):
        where = f"{source} row {i + 1}"
        for column in PREFERENCE_COLUMNS:
            if column not in row:
                raise TrainingDataError(f"{where}: missing field {column!r}")
        for column in ("prompt", "chosen", "rejected"):
            value = row[column]
            if (
                not isinstance(value, list)
                or not value
                or not all(isinstance(m, dict) and "role" in m and "content" in m for m in value)
            ):
                raise TrainingDataError(
                    f"{where}: field {column!r} must be a list of chat messages "
                    "with role and content"
                )
        if not isinstance(row["images"], list):
            raise TrainingDataError(f"{where}: field 'images' must be a list of image files")
        n_blocks = sum(
            1
            for m in row["prompt"]
            if isinstance(m.get("content"), list)
            for b in m["content"]
            if isinstance(b, dict) and b.get("type") == "image"
        )
        if n_blocks != len(row["images"]):
            raise TrainingDataError(
                f"{where}: the prompt has {n_blocks} image block(s) but 'images' lists "
                f"{len(row['images'])} file(s)"
            )
        images = []
        for item in row["images"]:
            if isinstance(item, dict) and item.get("bytes") is not None:
                images.append({"bytes": item["bytes"], "path": item.get("path")})
                continue
            path = Path(item["path"] if isinstance(item, dict) else item)
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
            _check_image(path, where)
            images.append(_image_entry(path))
        out = {k: row[k] for k in ("prompt", "chosen", "rejected")}
        out["images"] = images
        if "provenance" in row:
            out["provenance"] = json.dumps(row["provenance"], sort_keys=True, default=str)
        clean.append(out)
    return Dataset.from_list(clean).cast_column("images", List(Image()))


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise TrainingDataError(
                    f"{path} line {number}: not valid JSON ({exc.msg})"
                ) from None
    return rows


def load_preference_dataset(source: Path | str | list[dict[str, Any]], split: str = "train"):
    """A preference split from an export folder, a `datasets` folder, a JSONL file or rows.

    Accepted: the folder `studies.preferences.harvest.export_preferences` writes (its `hf/` datasets
    folder is used), any `save_to_disk` folder (a DatasetDict is indexed by `split`), a
    `<split>.jsonl` file or a folder holding one (image paths relative to the file), or a
    list of row dicts with `prompt`, `chosen`, `rejected`, `images` (paths). Returns None when
    the requested split does not exist or is empty (a missing validation split is normal).
    """
    from datasets import Dataset, DatasetDict, load_from_disk

    if isinstance(source, list):
        return preference_rows_to_dataset(source, None, "rows")
    path = Path(source)
    if not path.exists():
        raise TrainingDataError(f"preference data not found: {path}")
    if path.is_dir() and (path / "hf").is_dir():
        path = path / "hf"
    if path.is_dir() and (
        (path / "dataset_dict.json").exists() or (path / "dataset_info.json").exists()
    ):
        loaded = load_from_disk(str(path))
        if isinstance(loaded, DatasetDict):
            if split not in loaded:
                return None
            loaded = loaded[split]
        assert isinstance(loaded, Dataset)
        missing = [c for c in PREFERENCE_COLUMNS if c not in loaded.column_names]
        if missing:
            raise TrainingDataError(f"{path}: dataset lacks column(s) {', '.join(missing)}")
        return loaded if len(loaded) else None
    jsonl = path if path.is_file() else path / f"{split}.jsonl"
    if path.is_dir() and not jsonl.exists():
        if split == "train":
            raise TrainingDataError(
                f"{path}: no preference data (expected hf/, a datasets folder or {split}.jsonl)"
            )
        return None
    if path.is_file() and split != "train":
        return None
    rows = _read_jsonl(jsonl)
    if not rows:
        return (
            None if split != "train" else preference_rows_to_dataset(rows, jsonl.parent, str(jsonl))
        )
    return preference_rows_to_dataset(rows, jsonl.parent, str(jsonl))


def load_sft_examples(path: Path | str) -> list[SFTExample]:
    """SFT examples from a JSONL file: one {"images": [...], "response": ..., "question"?,
    "key"?} per line, image paths relative to the file; names the line of a bad row."""
    path = Path(path)
    if not path.is_file():
        raise TrainingDataError(f"SFT examples not found: {path}")
    examples = []
    for number, row in enumerate(_read_jsonl(path), start=1):
        where = f"{path} row {number}"
        if not isinstance(row, dict):
            raise TrainingDataError(f"{where}: expected a JSON object")
        images = row.get("images")
        if not isinstance(images, list) or not all(isinstance(p, str) for p in images):
            raise TrainingDataError(f"{where}: field 'images' must be a list of image files")
        if not isinstance(row.get("response"), str):
            raise TrainingDataError(f"{where}: field 'response' must be the target text")
        examples.append(
            SFTExample(
                images=[p if Path(p).is_absolute() else path.parent / p for p in map(Path, images)],
                response=row["response"],
                question=row.get("question"),
                key=str(row.get("key", number)),
            )
        )
    return examples
