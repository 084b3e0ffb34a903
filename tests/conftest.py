import contextlib
import io
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

# Test this checkout's package, whichever copy pip installed last.
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "generator"))

from iscsi_hookgen.cli import main  # noqa: E402
from samples import IN_SECRET, SECRET  # noqa: E402


@pytest.fixture
def generate(tmp_path: Path) -> Callable[..., Path]:
    """Run the CLI with --output into a fresh directory; returns that directory."""
    counter = iter(range(1000))

    def run(*args: str) -> Path:
        out = tmp_path / f"hooks{next(counter)}"
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            status = main(["--output", str(out), *args])
        assert status == 0, stderr.getvalue()
        return out

    return run


@pytest.fixture
def secret_files(tmp_path: Path) -> tuple[Path, Path]:
    out, incoming = tmp_path / "chap-secret", tmp_path / "chap-in-secret"
    out.write_text(SECRET + "\n")
    incoming.write_text(IN_SECRET + "\n")
    return out, incoming
