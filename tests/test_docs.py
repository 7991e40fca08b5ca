"""The README is the newcomer's manual: it must document every setting the service reads."""

from __future__ import annotations

from pathlib import Path

from app.config import Settings
from settings_table import table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    text = README.read_text()
    missing = [name for name in Settings.model_fields if f"| `GAN_{name.upper()}` |" not in text]
    assert missing == []


def test_the_readme_table_is_the_generated_one() -> None:
    """The table is made from the Settings declarations: regenerate it, never edit it by hand."""
    start, end = "<!-- settings-table:start -->\n", "\n<!-- settings-table:end -->"
    text = README.read_text()
    assert text[text.index(start) + len(start) : text.index(end)] == table(), (
        "run `python scripts/settings_table.py` and paste its output into README.md"
    )


def test_readme_gives_the_two_commands() -> None:
    text = README.read_text()
    assert "make serve" in text and "make test" in text
