"""Writing a command's output file whole or not at all."""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO, TypeVar

from django.core.management.base import CommandError

T = TypeVar("T")


def write_file(path: Path, write: Callable[[TextIO], T]) -> T:
    """Call write(f) on a new file beside `path`, then rename it to `path`; return its result.

    A failed export never leaves half a file where a training run might pick it up. An
    OSError (no such directory, no permission, disk full) becomes a CommandError."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise CommandError(f"Cannot write to {path.parent}: {e.strerror}.") from e
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            result = write(f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise CommandError(f"Cannot write {path}: {e.strerror}.") from e
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return result
