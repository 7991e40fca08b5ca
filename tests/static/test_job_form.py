"""The page's job form says what the API does: each custom field is a job parameter, and what the
form shows or sends untouched (a value, a placeholder, a select's initial option) is that
parameter's default, so that starting a job without editing the form trains the recipe the
page promises (static/index.html against app.schemas.jobs.JobParams)."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from app.schemas.jobs import JobParams

PAGE = Path(__file__).parents[2] / "app" / "static" / "index.html"


class JobFormFields(HTMLParser):
    """The inputs and selects inside ``#job-custom``, as {name: what the form shows for it}:
    an input's value, else its placeholder (None for neither); a select's selected option, else
    its first, as a browser initialises it."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str | None] = {}
        self._depth = 0  # open fieldsets since #job-custom opened, 0 outside it
        self._select: str | None = None
        self._select_has_selected = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "fieldset" and (self._depth or attributes.get("id") == "job-custom"):
            self._depth += 1
        if not self._depth or ("name" not in attributes and tag != "option"):
            return
        name = attributes.get("name") or ""
        if tag == "input":
            self.fields[name] = attributes.get("value") or attributes.get("placeholder")
        elif tag == "select":
            self._select, self._select_has_selected = name, False
        elif tag == "option" and self._select is not None:
            chosen = "selected" in attributes
            if self._select not in self.fields or (chosen and not self._select_has_selected):
                self.fields[self._select] = attributes.get("value")
            self._select_has_selected |= chosen

    def handle_endtag(self, tag: str) -> None:
        if tag == "fieldset" and self._depth:
            self._depth -= 1
        elif tag == "select":
            self._select = None


def job_form_fields() -> dict[str, str | None]:
    parser = JobFormFields()
    parser.feed(PAGE.read_text())
    return parser.fields


def test_every_job_form_field_shows_the_apis_default() -> None:
    fields = job_form_fields()
    defaults = JobParams()
    assert {"steps", "loss", "latent_dim", "aux_classifier"} <= fields.keys()  # the parser works
    for name, shown in fields.items():
        assert name in JobParams.model_fields, f"the form sends {name!r}, not a job parameter"
        default = getattr(defaults, name)
        if default is None:  # empty means "not given": the form must not suggest a number
            assert shown is None or not is_number(shown), (name, shown)
        elif isinstance(default, str):
            assert shown == default, (name, shown, default)
        else:
            assert shown is not None and float(shown) == default, (name, shown, default)


def test_the_parser_reads_a_selects_selected_option_and_else_its_first() -> None:
    parser = JobFormFields()
    parser.feed(
        '<fieldset id="job-custom"><select name="a"><option value="x"><option value="y">'
        '</select><select name="b"><option value="x"><option value="y" selected></select>'
        '<input name="c" placeholder="3"><input name="d" value="4" placeholder="5"></fieldset>'
        '<input name="outside" value="9">'
    )
    assert parser.fields == {"a": "x", "b": "y", "c": "3", "d": "4"}


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
