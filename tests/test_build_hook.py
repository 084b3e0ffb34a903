"""The build hook (install/iscsi) sourced by real bash with recording mkinitcpio helpers."""

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from hookenv import run_build_hook
from samples import INITIATOR, TARGET

STATIC = ("--portal", "192.0.2.10", "--target", TARGET, "--initiator", INITIATOR)
REPO = Path(__file__).parent.parent
CORE_MODULES = [
    "iscsi_tcp",
    "libiscsi",
    "libiscsi_tcp",
    "scsi_transport_iscsi",
    "sd_mod",
    "crc32c?",
]


def modules(calls: list[list[str]]) -> list[str]:
    return [call[1] for call in calls if call[0] == "add_module"]


def test_static_build_adds_initiator_drivers_binary_and_runscript(
    generate: Callable[..., Path],
) -> None:
    run = run_build_hook(generate(*STATIC))
    assert run.status == 0, run.stderr
    assert modules(run.calls) == CORE_MODULES
    assert ["add_checked_modules", "/drivers/net/"] in run.calls
    assert ["add_checked_modules", "/drivers/(virtio/virtio_pci|hv/hv_vmbus)"] in run.calls
    assert ["add_binary", "iscsistart"] in run.calls
    assert run.calls[-1] == ["add_runscript", "iscsi"]
    assert not any(call[0] in ("add_file", "warning") for call in run.calls)


def test_ibft_build_requires_iscsi_ibft(generate: Callable[..., Path]) -> None:
    run = run_build_hook(generate("--ibft"))
    assert modules(run.calls) == [*CORE_MODULES, "iscsi_ibft"]


def test_nic_list_replaces_drivers_net_and_brings_the_bus_driver(
    generate: Callable[..., Path],
) -> None:
    run = run_build_hook(generate("--ibft", "--nic-module", "virtio_net", "--nic-module", "e1000e"))
    assert modules(run.calls) == [*CORE_MODULES, "iscsi_ibft", "virtio_pci", "virtio_net", "e1000e"]
    assert not any(call[0] == "add_checked_modules" for call in run.calls)


def test_chap_file_is_added_from_beside_the_hook_directories_as_0600(
    generate: Callable[..., Path], secret_files: tuple[Path, Path]
) -> None:
    hooks = generate(*STATIC, "--chap-user", "arch", "--chap-secret-file", str(secret_files[0]))
    run = run_build_hook(hooks)
    assert ["add_file", str(hooks / "iscsi-chap"), "/etc/iscsi-chap", "0600"] in run.calls


def test_generic_build_takes_the_host_initiator_name_when_there_is_one() -> None:
    run = run_build_hook(REPO / "initcpio")
    assert modules(run.calls) == [*CORE_MODULES, "iscsi_ibft?"]
    expected = ["add_file", "/etc/iscsi/initiatorname.iscsi"]
    assert (expected in run.calls) == Path("/etc/iscsi/initiatorname.iscsi").is_file()


@pytest.mark.parametrize("hooks", ["static", "ibft", "generic"])
def test_help_documents_every_kernel_parameter_the_runtime_hook_reads(
    generate: Callable[..., Path], hooks: str
) -> None:
    directory = {
        "static": lambda: generate(*STATIC),
        "ibft": lambda: generate("--ibft"),
        "generic": lambda: REPO / "initcpio",
    }[hooks]()
    code = [
        line
        for line in (directory / "hooks/iscsi").read_text().splitlines()
        if not line.lstrip().startswith("#")
    ]
    read = set(re.findall(r"(?:getarg|iscsi_number|iscsi_all_args) ([a-z_.]+)", "\n".join(code)))
    assert {"netroot", "rd.iscsi.param", "iscsi_target_ip", "rd.iscsi.retries"} <= read
    text = run_build_hook(directory, function="help").stdout
    missing = sorted(key for key in read if key not in text)
    assert missing == []
