"""The rating form (one browser component) driven through Streamlit's AppTest.

AppTest runs no JavaScript, so these helpers do what the form's script does in a browser:
read the data the page sent to the form, and send the form's events (submit, correction,
flag, guidelines acknowledgement) as the browser sends them, as a trigger of the component's
event widget, in the next run. Nothing of the page is replaced: its callbacks and script run
as they do for a real browser.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest

from studies.readers.form import criteria

NAME = "medvision_rating_form"


def _forms(app: AppTest) -> list[Any]:
    found: list[Any] = []

    def walk(node: Any) -> None:
        proto = getattr(node, "proto", None)
        if type(proto).__name__ == "BidiComponent" and proto.component_name == NAME:
            found.append(proto)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(app._tree)
    return found


def has_form(app: AppTest) -> bool:
    return bool(_forms(app))


def form_data(app: AppTest) -> dict[str, Any]:
    """What the page sent to the rating form in the last run (AssertionError: no form)."""
    forms = _forms(app)
    assert len(forms) == 1, f"expected one rating form, found {len(forms)}"
    proto = forms[0]
    kind = proto.WhichOneof("data")
    return json.loads(proto.json if kind == "json" else proto.mixed.json)


def send(app: AppTest, event: str, value: dict[str, Any]) -> AppTest:
    """The form sends `event` with `value` (and a fresh event id), as its script does."""
    proto = _forms(app)[0]
    states = app._tree.get_widget_states()
    payload = [{"event": event, "value": {**value, "id": uuid.uuid4().hex}}]
    states.widgets.append(
        WidgetState(
            id=f"$$STREAMLIT_INTERNAL_KEY_{proto.id}__events",
            json_trigger_value=json.dumps(payload),
        )
    )
    app._run(states)
    assert not app.exception, app.exception
    return app


def answer(
    data: dict[str, Any], choice: str = "left", score: int = 4, comment: str = ""
) -> dict[str, Any]:
    """A full answer for the form's case: `score` for every criterion of both reports."""
    keys = [c["key"] for c in data["form"]["criteria"]]
    likert = {side: dict.fromkeys(keys, score) for side in ("left", "right")}
    return {"choice": choice, "likert": likert, "comment": comment}


def submit(
    app: AppTest,
    choice: str = "left",
    score: int = 4,
    comment: str = "",
    likert: dict[str, dict[str, int]] | None = None,
) -> AppTest:
    """Answer the form's case (every rating `score`, or `likert`) and submit it."""
    data = form_data(app)
    value = answer(data, choice, score, comment)
    if likert is not None:
        value["likert"] = likert
    return send(
        app,
        "correct" if data["mode"] == "correct" else "submit",
        {
            "token": data["task"]["token"],
            **value,
        },
    )


def criteria_keys(form: dict[str, Any] | None = None) -> list[str]:
    return [c.key for c in criteria(form)]
