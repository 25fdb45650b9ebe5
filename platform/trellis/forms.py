"""Form fields the admin UI's generated forms lack."""

from __future__ import annotations

import json
from typing import Any

from wtforms import TextAreaField


class JSONField(TextAreaField):
    """A JSON value (a list of journey steps, a rule's actions…) edited as
    indented text.  Text that is not JSON is a field error naming the line and
    column; the model's own rules then check what the value means.

    ``JSONField("Steps", rows=12)`` in a view's ``add_form_extra_fields`` /
    ``edit_form_extra_fields`` under the column's name.
    """

    def __init__(self, label: str | None = None, validators: Any = None, rows: int = 10,
                 **kwargs: Any) -> None:
        render_kw = {"rows": rows, "spellcheck": "false", "class": "form-control tr-json",
                     **kwargs.pop("render_kw", {})}
        super().__init__(label, validators, render_kw=render_kw, **kwargs)

    def _value(self) -> str:
        if self.raw_data:
            return self.raw_data[0]
        return "" if self.data is None else json.dumps(self.data, indent=2, ensure_ascii=False)

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist:
            return
        text = (valuelist[0] or "").strip()
        if not text:
            self.data = None
            return
        try:
            self.data = json.loads(text)
        except json.JSONDecodeError as exc:
            self.data = None
            raise ValueError(f"Not valid JSON: {exc.msg} (line {exc.lineno}, "
                             f"column {exc.colno}).") from None
