"""Session-wide pieces of the VM tests: the kernel, the root disk template and
the rig, shared by every boot. A missing tool fails the tests loudly (an
error, never a skip): the VM tests are part of CI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rig.hookgen import STATIC_ARGS, generate
from rig.host import accelerator, find_kernel, require_tools
from rig.rootfs import build_root_image
from rig.scenario import Rig

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.vm)


@pytest.fixture(scope="session")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Rig:
    require_tools()
    kernel = find_kernel()
    # VMTEST_WORKDIR keeps consoles and images where pytest's rotation of
    # temporary directories cannot remove them (for debugging a boot).
    keep = os.environ.get("VMTEST_WORKDIR")
    workdir = Path(keep) if keep else tmp_path_factory.mktemp("vm")
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"VM rig: kernel {kernel.version}, accel {accelerator()}, work {workdir}")
    return Rig(kernel, workdir, build_root_image(workdir / "root.img"))


@pytest.fixture(scope="session")
def static_hooks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Our generated static-portal hook for the rig's target, with a -P the
    booted system can check (recovery_tmo is replacement_timeout)."""
    return generate(tmp_path_factory.mktemp("gen") / "static", *STATIC_ARGS,
                    "-P", "node.session.timeo.replacement_timeout=86400")  # fmt: skip
