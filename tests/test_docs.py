"""The README is the newcomer's manual: it must document every setting the service reads."""

from __future__ import annotations

from pathlib import Path

from app.config import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    text = README.read_text()
    missing = [name for name in Settings.model_fields if f"| `GAN_{name.upper()}` |" not in text]
    assert missing == []


def test_readme_gives_the_two_commands() -> None:
    text = README.read_text()
    assert "make serve" in text and "make test" in text
