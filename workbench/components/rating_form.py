"""The rating form as one browser component: media, both reports, the criteria with their
anchors, preference, comment, submit, "cannot assess" and the guidelines, all keys handled in
the browser (rating_form.js).

Why one component: a Streamlit widget reruns the script on every change, and a key pressed
while a rerun is on its way was lost. Here a key press changes only the browser's copy of the
answer (kept as a draft in the browser's localStorage under the opaque task token); the only
round trips are the events below, each sent once with an id that the next render echoes
(`reply`), so the form knows its answer has been handled and keys typed meanwhile are applied
to what comes back.

Blinding: the data sent holds only what `RatingTask` carries (the opaque token, media as
anonymous data: URLs, the texts as shown), never a system name, id or file name. Texts are
set as text in the browser, never as HTML.
"""

from __future__ import annotations

import base64
import functools
import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from studies.readers.form import PREFERENCES, SCALE, criteria
from studies.readers.rating import RatingTask
from workbench.ui import MediaUnreadable, media_bytes, readable_frames

NAME = "medvision_rating_form"
KEY = "rate_form"
# What the form sends: a new answer, a correction, a flag ("cannot assess"), the guidelines
# acknowledgement, asking for the list of earlier answers, opening one of them to correct it,
# and leaving a correction for the next case.
EVENTS = ("submit", "correct", "flag", "ack", "list", "open", "leave")
# Frames shown of a frames folder (evenly spaced): enough to step through, small to send.
MAX_FRAMES = 12
_HERE = Path(__file__).parent
_VIDEO_TYPES = {
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".mov": "video/quicktime",
    ".ogv": "video/ogg",
}

_component = st.components.v2.component(
    NAME,
    html=(_HERE / "rating_form.html").read_text(encoding="utf-8"),
    css=(_HERE / "rating_form.css").read_text(encoding="utf-8"),
    js=(_HERE / "rating_form.js").read_text(encoding="utf-8"),
)


def _data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _image_url(path: Path) -> str:
    stat = path.stat()
    return _checked_image_url(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)
def _checked_image_url(path: str, _mtime_ns: int, _size: int) -> str:
    # Kept per file version (a changed file has another mtime or size): each run of the page
    # sends the case and the next one, and decoding every image again each time is wasted.
    data = media_bytes(Path(path))  # decoded in full: a bad file raises, nothing is sent
    mime = mimetypes.guess_type(path)[0] or "image/png"
    return _data_url(mime if mime.startswith("image/") else "image/png", data)


def task_media(task: RatingTask) -> list[dict[str, Any]]:
    """Every image, frame and clip of the task as anonymous data: URLs, read (and images
    decoded) before any is sent: a bad file raises MediaUnreadable and nothing is shown."""
    shown: list[dict[str, Any]] = []
    try:
        for item in task.media:
            if task.modality == "video":
                mime = _VIDEO_TYPES.get(item.path.suffix.lower(), "video/mp4")
                shown.append({"kind": "video", "src": _data_url(mime, item.path.read_bytes())})
            elif task.modality == "frames":
                frames = readable_frames(item.path) if item.path.is_dir() else []
                if not frames:
                    raise MediaUnreadable("no readable frames")
                step = max(1, -(-len(frames) // MAX_FRAMES))
                shown.append(
                    {
                        "kind": "frames",
                        "frames": [_image_url(p) for p in frames[::step][:MAX_FRAMES]],
                    }
                )
            else:
                shown.append({"kind": "image", "src": _image_url(item.path)})
    except OSError as exc:
        raise MediaUnreadable(str(exc)) from exc
    if not shown:
        raise MediaUnreadable("the case has no media")
    return shown


def form_data(form: dict[str, Any]) -> dict[str, Any]:
    """The study's frozen form as the component reads it (criteria with their anchors)."""
    return {
        "criteria": [
            {"key": c.key, "label": c.label, "question": c.question, "anchors": c.anchors}
            for c in criteria(form)
        ],
        "require_likert": bool(form.get("require_likert", True)),
        "comment_required_for": list(form.get("comment_required_for", ["both_bad"])),
    }


def task_data(
    task: RatingTask,
    media: list[dict[str, Any]],
    *,
    done: int | None = None,
    number: int | None = None,
) -> dict[str, Any]:
    """One case as the form shows it; `done` overrides the count (for the case after this one,
    shown once this one is submitted). `number` is the "case n of N" the rater reads: the
    cases done + 1 (a flagged case leaves the count, so the place in the order would run past
    N), or, for an earlier answer, its place among the rater's answers."""
    done = task.done if done is None else done
    return {
        "token": task.token,
        "study": task.study_name,
        "position": task.position,
        "number": done + 1 if number is None else number,
        "done": done,
        "total": task.total,
        "question": task.question or "",
        "left": task.left_text,
        "right": task.right_text,
        "modality": task.modality,
        "media": media,
    }


def form_payload(
    task: RatingTask,
    media: list[dict[str, Any]],
    *,
    number: int | None = None,
    session: str,
    reply: str | None,
    mode: str = "rate",
    answer: dict[str, Any] | None = None,
    message: dict[str, str] | None = None,
    feedback: str | None = None,
    calibration: str | None = None,
    guidelines: str = "",
    guidelines_required: bool = False,
    data_label: str = "",
    flag_reasons: list[dict[str, Any]] | None = None,
    clear_drafts: list[str] | None = None,
    upcoming: dict[str, Any] | None = None,
    earlier: list[dict[str, str | int]] | None = None,
) -> dict[str, Any]:
    """Everything one render of the form shows (JSON). `upcoming`: the case after this one
    (`task_data`), shown at once on submit while the answer is saved."""
    return {
        "session": session,
        "reply": reply,
        "mode": mode,
        "task": task_data(task, media, number=number),
        "form": form_data(task.form),
        "scale": list(SCALE),
        "preferences": dict(PREFERENCES),
        "answer": answer,
        "message": message,
        "feedback": feedback,
        "calibration": calibration,
        "guidelines": guidelines,
        "guidelines_required": guidelines_required,
        "data_label": data_label,  # the SYNTHETIC label of simulated cases ("" for real ones)
        "flag_reasons": flag_reasons or [],
        "clear_drafts": clear_drafts or [],
        "next": upcoming,
        # The rater's earlier answers (position, token, label), sent only when asked.
        "earlier": earlier,
    }


def rating_form(data: dict[str, Any], on_event: Callable[[str], None]) -> None:
    """Draw the form; `on_event(name)` runs (before the next run of the page) when the form
    sends one of EVENTS, whose value `event_value(name)` then reads."""
    callbacks = {f"on_{name}_change": (lambda name=name: on_event(name)) for name in EVENTS}
    _component(key=KEY, data=data, **callbacks)


def event_value(name: str) -> dict[str, Any] | None:
    """What the form sent with event `name` in this run (None: not sent)."""
    state = st.session_state.get(KEY)
    value = state.get(name) if state is not None else None
    return value if isinstance(value, dict) else None


def answer_from(value: dict[str, Any]) -> dict[str, Any]:
    """The answer in a form event, in the shapes submit_judgment takes (the store checks it
    against the study's form; anything malformed here becomes a missing rating there)."""
    likert: dict[str, dict[str, int]] = {"left": {}, "right": {}}
    raw = value.get("likert") if isinstance(value.get("likert"), dict) else {}
    for side in likert:
        scores = raw.get(side) if isinstance(raw.get(side), dict) else {}
        for key, score in scores.items():
            if isinstance(key, str) and isinstance(score, int) and not isinstance(score, bool):
                likert[side][key] = score
    choice = value.get("choice")
    comment = value.get("comment")
    return {
        "choice": choice if isinstance(choice, str) else None,
        "likert": likert,
        "comment": comment if isinstance(comment, str) else "",
    }
