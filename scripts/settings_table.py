"""Print the README's configuration table from ``app.config.Settings``: every ``GAN_*`` variable,
its default and its description, so the documentation is made from the one declaration.

    python scripts/settings_table.py        # paste between the markers in README.md
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic_core import PydanticUndefined

from app.config import Settings
from app.limits import env_name


def shown(default: Any) -> str:
    if default is None:
        return "unset"
    if isinstance(default, Path):
        return f"`{default}`"
    if isinstance(default, list | dict):
        return f"`{json.dumps(default)}`"
    return f"`{default}`"


def table() -> str:
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        default = field.default
        if default is PydanticUndefined and field.default_factory is not None:
            default = field.default_factory()  # type: ignore[call-arg]
        if hasattr(default, "get_secret_value"):
            default = None
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{env_name(name)}` | {shown(default)} | {description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
