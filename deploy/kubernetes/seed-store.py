"""Init container: fill an empty shared model store from the store shipped in the image.

Kubernetes has no copy-up: a fresh PersistentVolume mounted on /srv/model_store would hide the
image's store and leave the service without a model. So the store volume is mounted on
``/mnt/model-store`` in an init container that copies each shipped entry that the volume lacks
(its own copy first, under a name no listing shows, then one rename into place), and ``ACTIVE``
only if the volume has none: an existing store, with its own versions and pointer, is left as
it is. Several pods may run this at once; the renames and the exclusive create decide who wins.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

SHIPPED = Path(os.environ.get("SEED_FROM", "/srv/model_store"))
STORE = Path(os.environ.get("SEED_TO", "/mnt/model-store"))


def seed(shipped: Path, store: Path) -> list[str]:
    copied = []
    for entry in sorted(shipped.iterdir()):
        if entry.name.startswith(".") or entry.name == "ACTIVE" or not entry.is_dir():
            continue
        if (store / entry.name).exists():
            continue
        scratch = Path(tempfile.mkdtemp(prefix=".seed-", dir=store))
        try:
            shutil.copytree(entry, scratch / entry.name)
            os.rename(scratch / entry.name, store / entry.name)
            copied.append(entry.name)
        except OSError:
            if not (store / entry.name).is_dir():  # not another pod's win: a real failure
                raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    pointer = store / "ACTIVE"
    if not pointer.exists():
        # Written whole under a scratch name, then linked into place: link fails if the pointer
        # exists, so only one pod sets the first one, and no pod ever reads it half written.
        scratch_pointer = store / f".seed-ACTIVE-{os.getpid()}"
        scratch_pointer.write_text((shipped / "ACTIVE").read_text())
        try:
            os.link(scratch_pointer, pointer)
            copied.append("ACTIVE")
        except FileExistsError:
            pass
        finally:
            scratch_pointer.unlink()
    return copied


if __name__ == "__main__":
    done = seed(SHIPPED, STORE)
    active = (STORE / "ACTIVE").read_text().strip()
    print(
        f"model store {STORE}: seeded {', '.join(done) or 'nothing (already there)'}; "
        f"active {active}",
        file=sys.stderr,
    )
