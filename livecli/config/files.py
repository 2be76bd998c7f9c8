"""One way to replace a file atomically: write a temporary file beside it, then rename.

The login token, the instrument cache and every export are written this way, so a crash, a
full disk or Ctrl-C never leaves a half-written file where a whole one is expected. It lives in
the config layer because that is the lowest layer allowed to touch files (the core touches none).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path


@contextmanager
def atomic_path(path: Path, *, mode: int | None = None) -> Iterator[Path]:
    """A temporary path beside `path`; it replaces `path` only when the block completes.

    `mode` (e.g. 0o600 for secrets) is set on the empty file before anything is written, so no
    other user can ever read its contents, whatever the umask. On any failure, Ctrl-C included,
    the temporary file is removed and the exception (an OSError for the caller to explain)
    propagates: nothing partial is left behind.
    """
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    tmp = Path(name)
    try:
        if mode is not None and hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        os.close(fd)
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            tmp.unlink()
        raise
