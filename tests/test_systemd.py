"""systemd-based images: the login unit runs the same routine, the build adds its pieces."""

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from hookenv import run_build_hook, run_runtime_hook
from samples import INITIATOR, SELF_LIMITS, TARGET

STATIC = ("--portal", "192.0.2.10", "--target", TARGET, "--initiator", INITIATOR)
REPO = Path(__file__).parent.parent
GENERIC_HOOK = REPO / "initcpio/hooks/iscsi"
NIC = {"/sys/class/net/eth0/device": "", "/sys/class/net/lo/operstate": "unknown\n"}
UNIT = "/usr/lib/systemd/system/iscsi-hookgen-login.service"
LOGIN_ARGV = [
    "-i",
    INITIATOR,
    "-t",
    TARGET,
    "-g",
    "1",
    "-a",
    "192.0.2.10",
    "-p",
    "3260",
    *SELF_LIMITS,
]


@pytest.fixture
def static_hook(generate: Callable[..., Path]) -> Path:
    return generate(*STATIC) / "hooks/iscsi"


# --- the login routine as iscsi-hookgen-login.service runs it ------------------------


def test_static_ip_from_the_command_line_is_applied_before_the_login(static_hook: Path) -> None:
    run = run_runtime_hook(
        static_hook,
        ("root=/dev/sda1", "ip=10.0.2.15::10.0.2.2:255.255.255.0::eth0:none"),
        systemd=True,
        network=False,
        files=NIC,
    )
    assert run.status == 0, run.output
    assert run.ip == [
        "link set dev eth0 up",
        "addr add 10.0.2.15/24 dev eth0",
        "route add default via 10.0.2.2 dev eth0",
    ]
    assert run.iscsistart == [LOGIN_ARGV]


def test_ip_dhcp_runs_udhcpc_on_the_first_nic_with_our_lease_script(static_hook: Path) -> None:
    run = run_runtime_hook(static_hook, ("ip=dhcp",), systemd=True, network=False, files=NIC)
    assert run.status == 0, run.output
    assert run.udhcpc == ["-i eth0 -f -q -n -t 5 -T 3 -s /usr/lib/iscsi-hookgen/udhcpc-script"]
    assert run.iscsistart == [LOGIN_ARGV]


def test_no_dhcp_answer_fails_before_any_login(static_hook: Path) -> None:
    run = run_runtime_hook(
        static_hook, ("ip=dhcp",), systemd=True, network=False, no_dhcp=True, files=NIC
    )
    assert run.status == 1
    assert run.iscsistart == []
    assert "no DHCP answer on eth0" in run.stdout


def test_no_ip_parameter_in_a_systemd_image_asks_for_ip_not_for_the_net_hook(
    static_hook: Path,
) -> None:
    run = run_runtime_hook(static_hook, ("root=/dev/sda1",), systemd=True, network=False)
    assert run.status == 1
    assert "no network interface has an address" in run.stdout
    assert "add ip=dhcp" in run.stdout and "'net'" not in run.stdout


def test_a_nic_that_never_appears_is_waited_for_boundedly(static_hook: Path) -> None:
    run = run_runtime_hook(
        static_hook, ("ip=dhcp", "rd.iscsi.nic_timeout=1"), systemd=True, network=False
    )
    assert run.status == 1
    assert "no network interface appeared within 1s" in run.output
    assert run.seconds < 10


@pytest.mark.parametrize(
    ("ip", "message"),
    [
        ("ip=10.0.2.15::10.0.2.2:255.0.255.0::eth0:none", "netmask '255.0.255.0'"),
        ("ip=10.0.2.15::::::rarp", "autoconf 'rarp' is not supported"),
        ("ip=::::::none", "neither a client address nor dhcp"),
        ("ip=bootp-please", "is not understood"),
    ],
)
def test_bad_ip_parameters_are_named(static_hook: Path, ip: str, message: str) -> None:
    run = run_runtime_hook(static_hook, (ip,), systemd=True, network=False, files=NIC)
    assert run.status == 1
    assert message in run.stdout
    assert run.iscsistart == []


def test_command_line_is_parsed_as_mkinitcpio_does(static_hook: Path) -> None:
    run = run_runtime_hook(
        static_hook,
        (
            'rd.iscsi.param="node.session.timeo.replacement_timeout=86400"',
            "rd.iscsi.param=node.session.cmds_max=64",
            "iscsi_target_port=3262",
            "#",
            "iscsi_target_port=9",
        ),
        systemd=True,
        files=NIC,
    )
    assert run.status == 0, run.output
    assert run.iscsistart == [
        [
            *LOGIN_ARGV[:9],
            "3262",
            *SELF_LIMITS,
            "-P",
            "node.session.timeo.replacement_timeout=86400",
            "-P",
            "node.session.cmds_max=64",
        ]
    ]


def test_ibft_in_a_systemd_image_needs_no_network_set_up(generate: Callable[..., Path]) -> None:
    run = run_runtime_hook(
        generate("--ibft") / "hooks/iscsi", ("ip=dhcp",), systemd=True, network=False, ibft=True
    )
    assert run.status == 0, run.output
    assert run.iscsistart == [["-N"], ["-b", *SELF_LIMITS]]
    assert run.udhcpc == [] and run.ip == []


def test_dead_target_in_a_systemd_image_gives_up_with_the_same_message(static_hook: Path) -> None:
    run = run_runtime_hook(
        static_hook,
        ("rd.iscsi.retries=2", "rd.iscsi.retry_delay=0"),
        systemd=True,
        fail_times=99,
        files=NIC,
    )
    assert run.status == 1
    assert len(run.iscsistart) == 2
    assert "rescue shell" not in run.stdout
    assert f"ERROR: iSCSI: login to {TARGET} at 192.0.2.10:3260 failed after 2 attempts" in (
        run.stdout
    )


def test_udhcpc_lease_script_applies_the_lease(static_hook: Path) -> None:
    run = run_runtime_hook(
        static_hook,
        systemd=True,
        entry="interface=eth0 ip=10.0.2.15 mask=24 router='10.0.2.2 10.0.2.3' "
        "iscsi_udhcpc_event bound",
    )
    assert run.status == 0, run.output
    assert run.ip == [
        "addr flush dev eth0",
        "addr add 10.0.2.15/24 dev eth0",
        "route add default via 10.0.2.2 dev eth0",
    ]


@pytest.mark.parametrize(
    ("root", "unit"),
    [
        ("root=/dev/sda", "dev-sda.device"),
        (
            "root=UUID=0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9",
            r"dev-disk-by\x2duuid-0a1b2c3d\x2d4e5f\x2d6071\x2d8293\x2da4b5c6d7e8f9.device",
        ),
        ("root=LABEL=arch_root", r"dev-disk-by\x2dlabel-arch_root.device"),
        ("root=PARTUUID=5e6f7a8b-01", r"dev-disk-by\x2dpartuuid-5e6f7a8b\x2d01.device"),
        ("root=PARTLABEL=root", r"dev-disk-by\x2dpartlabel-root.device"),
    ],
)
def test_generator_orders_the_root_device_after_the_login(root: str, unit: str) -> None:
    run = run_runtime_hook(
        GENERIC_HOOK,
        ("rw", root, "quiet"),
        systemd=True,
        entry="iscsi_root_device_generator /tmp/out",
    )
    assert run.status == 0, run.output
    assert run.out == {
        f"{unit}.d/iscsi-hookgen.conf": "# Written by iscsi-hookgen: the root disk appears only "
        "after the iSCSI login.\n[Unit]\nAfter=iscsi-hookgen-login.service\n"
    }


def test_generator_leaves_other_roots_alone() -> None:
    run = run_runtime_hook(
        GENERIC_HOOK,
        ("root=zfs:rpool/root",),
        systemd=True,
        entry="iscsi_root_device_generator /tmp/out",
    )
    assert run.status == 0 and run.out == {}


# --- what install/iscsi adds to a systemd image ---------------------------------------


def test_systemd_build_adds_busybox_unit_generator_and_wants_link(
    generate: Callable[..., Path],
) -> None:
    run = run_build_hook(generate(*STATIC), systemd=True)
    assert run.status == 0, run.stderr
    assert ["add_binary", "/usr/lib/initcpio/busybox", "/usr/bin/busybox"] in run.calls
    assert ["add_binary", "systemd-escape"] in run.calls
    applets = {
        c[1].rsplit("/", 1)[1]
        for c in run.calls
        if c[0] == "add_symlink" and c[1].startswith("/usr/lib/iscsi-hookgen/bin/")
    }
    assert {"sh", "grep", "sed", "tail", "sleep", "kill", "ip", "udhcpc"} <= applets
    assert [
        "add_symlink",
        "/usr/lib/systemd/system/initrd-root-device.target.wants/iscsi-hookgen-login.service",
        "../iscsi-hookgen-login.service",
    ] in run.calls
    assert set(run.files) == {
        UNIT,
        "/usr/lib/iscsi-hookgen/login",
        "/usr/lib/iscsi-hookgen/udhcpc-script",
        "/usr/lib/systemd/system-generators/iscsi-hookgen-root-device",
    }
    assert run.calls[-1] == ["add_runscript", "iscsi"]


def test_busybox_build_adds_no_systemd_pieces(generate: Callable[..., Path]) -> None:
    run = run_build_hook(generate(*STATIC))
    assert run.files == {}
    assert not any("systemd" in " ".join(call) for call in run.calls)


def test_only_the_generic_unit_is_conditional_on_the_command_line(
    generate: Callable[..., Path],
) -> None:
    generic = run_build_hook(REPO / "initcpio", systemd=True).files[UNIT]
    static = run_build_hook(generate(*STATIC), systemd=True).files[UNIT]
    assert "ConditionKernelCommandLine=|netroot" in generic
    assert "ConditionKernelCommandLine" not in static


def test_unit_start_timeout_is_above_the_login_bound(generate: Callable[..., Path]) -> None:
    unit = run_build_hook(
        generate(*STATIC, "--retries", "10", "--attempt-timeout", "20"), systemd=True
    ).files[UNIT]
    # 20 s NIC + 30 s DHCP + 10 x (20 + 2) + 20 s disk, plus a 30 s margin
    assert "TimeoutStartSec=320\n" in unit


@pytest.mark.parametrize("variant", ["static", "ibft", "generic"])
def test_unit_and_scripts_pass_systemd_analyze_verify_and_shellcheck(
    generate: Callable[..., Path], tmp_path: Path, variant: str
) -> None:
    hooks = {
        "static": lambda: generate(*STATIC),
        "ibft": lambda: generate("--ibft"),
        "generic": lambda: REPO / "initcpio",
    }[variant]()
    files = run_build_hook(hooks, systemd=True).files
    image = tmp_path / "image"
    for destination, text in files.items():
        path = image / destination.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o644 if destination == UNIT else 0o755)
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", f"--root={image}", UNIT],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    scripts = [str(image / d.lstrip("/")) for d in files if d != UNIT]
    done = subprocess.run(
        ["shellcheck", "--shell=dash", "--exclude=SC1091", *scripts],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout
