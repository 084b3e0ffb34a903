"""The runtime hook (hooks/iscsi) under busybox ash, with a recording fake iscsistart."""

from collections.abc import Callable
from pathlib import Path

import pytest

from hookenv import run_runtime_hook
from samples import IN_SECRET, INITIATOR, RESILIENT_ARGS, SECRET, SELF_LIMITS, TARGET

STATIC = ("--portal", "192.0.2.10", "--target", TARGET, "--initiator", INITIATOR)
FAST = ("rd.iscsi.retry_delay=0",)
REPO = Path(__file__).parent.parent
GENERIC_HOOK = REPO / "initcpio/hooks/iscsi"


def login_argv(
    initiator: str = INITIATOR,
    target: str = TARGET,
    address: str = "192.0.2.10",
    port: str = "3260",
    tpgt: str = "1",
) -> list[str]:
    return ["-i", initiator, "-t", target, "-g", tpgt, "-a", address, "-p", port, *SELF_LIMITS]


@pytest.fixture
def static_hook(generate: Callable[..., Path]) -> Path:
    return generate(*STATIC) / "hooks/iscsi"


# --- static-portal mode -----------------------------------------------------------


def test_static_login_runs_iscsistart_once_with_the_generated_values(static_hook: Path) -> None:
    run = run_runtime_hook(static_hook)
    assert run.status == 0, run.output
    assert run.iscsistart == [login_argv()]
    assert "iscsi_tcp" in run.modprobe[0] and "sd_mod" in run.modprobe[0]
    assert "logged in" in run.stdout


def test_params_resilient_and_chap_reach_iscsistart(
    generate: Callable[..., Path], secret_files: tuple[Path, Path]
) -> None:
    hooks = generate(
        *STATIC,
        "--resilient",
        "-P",
        "node.conn[0].iscsi.MaxXmitDataSegmentLength=262144",
        "--chap-user",
        "arch",
        "--chap-secret-file",
        str(secret_files[0]),
        "--chap-in-user",
        "target",
        "--chap-in-secret-file",
        str(secret_files[1]),
    )
    chap_file = (hooks / "iscsi-chap").read_text()
    run = run_runtime_hook(hooks / "hooks/iscsi", files={"/etc/iscsi-chap": chap_file})
    assert run.status == 0, run.output
    assert run.iscsistart == [
        [
            *login_argv()[:10],
            "-u",
            "arch",
            "-w",
            SECRET,
            "-U",
            "target",
            "-W",
            IN_SECRET,
            *SELF_LIMITS,
            *RESILIENT_ARGS,
            "-P",
            "node.conn[0].iscsi.MaxXmitDataSegmentLength=262144",
        ]
    ]
    assert SECRET not in run.output and IN_SECRET not in run.output
    assert SECRET not in (hooks / "hooks/iscsi").read_text()


def test_a_failed_chap_login_names_the_user_but_never_the_secret(
    generate: Callable[..., Path], secret_files: tuple[Path, Path]
) -> None:
    hooks = generate(*STATIC, "--chap-user", "arch", "--chap-secret-file", str(secret_files[0]))
    run = run_runtime_hook(
        hooks / "hooks/iscsi",
        FAST,
        fail_times=99,
        status=24,
        files={"/etc/iscsi-chap": (hooks / "iscsi-chap").read_text()},
    )
    assert run.status != 0
    assert '"arch"' in run.stdout and "exit status 24" in run.stdout
    assert SECRET not in run.output


def test_retries_until_the_target_answers(static_hook: Path) -> None:
    run = run_runtime_hook(static_hook, FAST, fail_times=3)
    assert run.status == 0, run.output
    assert len(run.iscsistart) == 4
    assert "attempt 3 of 6 failed" in run.stdout


def test_gives_up_after_the_bound_and_says_what_it_tried(static_hook: Path) -> None:
    run = run_runtime_hook(static_hook, FAST, fail_times=99, status=8)
    assert run.status == 1
    assert len(run.iscsistart) == 6
    errors = [line for line in run.stdout.splitlines() if line.startswith("ERROR:")]
    assert errors[0] == (
        f"ERROR: iSCSI: login to {TARGET} at 192.0.2.10:3260 failed after 6 attempts "
        "(last exit status 8)"
    )
    assert any(INITIATOR in line for line in errors)
    assert "rescue shell" in errors[-1]


def test_the_login_timeout_follows_the_attempt_bound(static_hook: Path) -> None:
    run = run_runtime_hook(static_hook, ("rd.iscsi.timeout=21",))
    assert run.iscsistart[0][10:] == [
        "-P",
        "node.session.initial_login_retry_max=1",
        "-P",
        "node.conn[0].timeo.login_timeout=10",
    ]


def test_retry_count_comes_from_the_command_line(static_hook: Path) -> None:
    run = run_runtime_hook(static_hook, (*FAST, "rd.iscsi.retries=2"), fail_times=99)
    assert run.status == 1
    assert len(run.iscsistart) == 2


def test_bad_retry_count_on_the_command_line_keeps_the_generated_one(static_hook: Path) -> None:
    run = run_runtime_hook(static_hook, (*FAST, "rd.iscsi.retries=lots"), fail_times=99)
    assert len(run.iscsistart) == 6
    assert "ignoring rd.iscsi.retries=lots" in run.output


def test_status_15_means_the_session_exists_and_counts_as_success(static_hook: Path) -> None:
    run = run_runtime_hook(static_hook, FAST, fail_times=1, status=15)
    assert run.status == 0, run.output
    assert len(run.iscsistart) == 1


def test_each_attempt_is_bounded_and_leftover_children_are_killed(static_hook: Path) -> None:
    run = run_runtime_hook(
        static_hook,
        (*FAST, "rd.iscsi.retries=2", "rd.iscsi.timeout=2"),
        hang=True,
        child=True,
    )
    assert run.status == 1
    assert len(run.iscsistart) == 2
    assert "gave no answer within 2s" in run.stdout
    assert run.leftovers == 0
    assert run.seconds < 15


def test_the_default_bound_gives_up_on_a_dead_target_within_about_a_minute(
    generate: Callable[..., Path],
) -> None:
    # retries x timeout + (retries - 1) x delay, measured on a scaled copy of
    # the defaults (6 x 8 + 5 x 2 = 58 s): here 3 x 2 + 2 x 1 = 8 s.
    hooks = generate(*STATIC, "--retries", "3", "--attempt-timeout", "2", "--retry-delay", "1")
    run = run_runtime_hook(hooks / "hooks/iscsi", hang=True)
    assert run.status == 1
    assert len(run.iscsistart) == 3
    assert 8 <= run.seconds < 12


def test_no_network_is_reported_with_the_fix(static_hook: Path) -> None:
    run = run_runtime_hook(static_hook, network=False)
    assert run.status == 1
    assert run.iscsistart == []
    assert "no network interface has an address" in run.stdout
    assert "ip=dhcp" in run.stdout and "'net' before 'iscsi'" in run.stdout


def test_without_the_ip_applet_the_network_check_is_skipped_not_failed(static_hook: Path) -> None:
    run = run_runtime_hook(static_hook, network=False, without=("ip",))
    assert run.status == 0, run.output
    assert run.iscsistart == [login_argv()]


def test_waits_for_the_disk_and_fails_clearly_when_none_appears(static_hook: Path) -> None:
    run = run_runtime_hook(static_hook, ("rd.iscsi.disk_timeout=1",), no_disk=True)
    assert run.status == 1
    assert "no disk of the target appeared within 1s" in run.stdout


# --- kernel command line ------------------------------------------------------------


def test_dracut_netroot_overrides_the_generated_portal(static_hook: Path) -> None:
    run = run_runtime_hook(
        static_hook, ("netroot=iscsi:198.51.100.7::3261::iqn.2020-01.net.example:other",)
    )
    assert run.status == 0, run.output
    assert run.iscsistart == [
        login_argv(target="iqn.2020-01.net.example:other", address="198.51.100.7", port="3261")
    ]


@pytest.mark.parametrize(
    ("netroot", "address", "port", "target"),
    [
        (
            "iscsi:[2001:db8::5]::3260::iqn.2020-01.net.example:v6",
            "2001:db8::5",
            "3260",
            "iqn.2020-01.net.example:v6",
        ),
        (
            "iscsi:[2001:db8::5]:6:3262:0:iqn.2020-01.net.example:a:b",
            "2001:db8::5",
            "3262",
            "iqn.2020-01.net.example:a:b",
        ),
        # iface and netdev fields are accepted and do not shift the port
        (
            "iscsi:192.0.2.99::3263:default:eth0:1:iqn.2020-01.net.example:x",
            "192.0.2.99",
            "3263",
            "iqn.2020-01.net.example:x",
        ),
        ("iscsi:192.0.2.99::::eui.02004567A425678D", "192.0.2.99", "3260", "eui.02004567A425678D"),
    ],
)
def test_netroot_forms(
    static_hook: Path, netroot: str, address: str, port: str, target: str
) -> None:
    run = run_runtime_hook(static_hook, (f"netroot={netroot}",))
    assert run.status == 0, run.output
    assert run.iscsistart == [login_argv(target=target, address=address, port=port)]


def test_netroot_credentials_are_used_with_a_warning_that_hides_them(static_hook: Path) -> None:
    run = run_runtime_hook(
        static_hook, ("netroot=iscsi:user:pw-in-cmdline:tuser:tpw@192.0.2.5::::" + TARGET,)
    )
    assert run.status == 0, run.output
    assert run.iscsistart[0][10:] == [
        "-u",
        "user",
        "-w",
        "pw-in-cmdline",
        "-U",
        "tuser",
        "-W",
        "tpw",
        *SELF_LIMITS,
    ]
    assert "WARNING" in run.stdout and "/proc/cmdline" in run.stdout
    assert "pw-in-cmdline" not in run.output


@pytest.mark.parametrize(
    ("netroot", "message"),
    [
        ("iscsi:192.0.2.5::::not-a-target", "no target name"),
        ("iscsi:192.0.2.5:17:::" + TARGET, "protocol '17' is not supported"),
        ("iscsi:192.0.2.5::port::" + TARGET, "port 'port' is not a number"),
    ],
)
def test_bad_netroot_fails_with_a_clear_message(
    static_hook: Path, netroot: str, message: str
) -> None:
    run = run_runtime_hook(static_hook, (f"netroot={netroot}",))
    assert run.status == 1
    assert run.iscsistart == []
    assert message in run.stdout


def test_debian_parameters_override_netroot_and_generated_values(static_hook: Path) -> None:
    run = run_runtime_hook(
        static_hook,
        (
            "netroot=iscsi:198.51.100.7::3261::iqn.2020-01.net.example:other",
            "iscsi_target_ip=203.0.113.4",
            "iscsi_target_port=3270",
            "iscsi_target_group=2",
            "iscsi_target_name=iqn.2021-02.org.example:third",
            "iscsi_initiator=iqn.2021-02.org.example:debian",
            "rd.iscsi.initiator=iqn.2021-02.org.example:dracut",
        ),
    )
    assert run.status == 0, run.output
    assert run.iscsistart == [
        login_argv(
            initiator="iqn.2021-02.org.example:dracut",
            target="iqn.2021-02.org.example:third",
            address="203.0.113.4",
            port="3270",
            tpgt="2",
        )
    ]


def test_repeated_rd_iscsi_param_all_reach_iscsistart_after_the_generated_ones(
    generate: Callable[..., Path],
) -> None:
    hook = generate(*STATIC, "-P", "node.session.timeo.replacement_timeout=120") / "hooks/iscsi"
    run = run_runtime_hook(
        hook,
        (
            "rd.iscsi.param=node.session.timeo.replacement_timeout=86400",
            "rd.iscsi.param=node.conn[0].timeo.noop_out_interval=0",
            "rd.iscsi.login_retry_max=3",
        ),
    )
    assert run.iscsistart[0][10:] == [
        *SELF_LIMITS,
        "-P",
        "node.session.timeo.replacement_timeout=120",
        "-P",
        "node.session.timeo.replacement_timeout=86400",
        "-P",
        "node.conn[0].timeo.noop_out_interval=0",
        "-P",
        "node.session.initial_login_retry_max=3",
    ]


def test_shell_metacharacters_from_the_command_line_stay_one_word(static_hook: Path) -> None:
    evil = "iqn.2020-01.x:$(printf 'ex%sed' pand);`id`"
    run = run_runtime_hook(static_hook, (f"iscsi_target_name={evil}",))
    assert run.iscsistart[0][3] == evil
    assert "expanded" not in run.output and "uid=" not in run.output


# --- iBFT mode ----------------------------------------------------------------------


def test_ibft_configures_the_network_then_logs_in(generate: Callable[..., Path]) -> None:
    hook = generate("--ibft", "--resilient") / "hooks/iscsi"
    run = run_runtime_hook(hook, network=False, ibft=True)
    assert run.status == 0, run.output
    assert run.iscsistart == [
        ["-N"],
        [
            "-b",
            *SELF_LIMITS,
            *RESILIENT_ARGS,
        ],
    ]
    assert any("iscsi_ibft" in call for call in run.modprobe)


VIRTIO_PCI_ALIAS = "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00"


def test_ibft_coldplugs_network_devices_pci_before_virtio(generate: Callable[..., Path]) -> None:
    hook = generate("--ibft") / "hooks/iscsi"
    pci = "/sys/bus/pci/devices"
    run = run_runtime_hook(
        hook,
        ibft=True,
        files={
            f"{pci}/0000:00:02.0/class": "0x030000\n",  # a graphics card: not ours to load
            f"{pci}/0000:00:02.0/modalias": "pci:v00001234d00001111sv*\n",
            f"{pci}/0000:00:03.0/class": "0x020000\n",
            f"{pci}/0000:00:03.0/modalias": VIRTIO_PCI_ALIAS + "\n",
            "/sys/bus/virtio/devices/virtio0/modalias": "virtio:d00000001v00001AF4\n",
            "/sys/bus/virtio/devices/virtio1/modalias": "virtio:d00000002v00001AF4\n",
        },
    )
    assert run.status == 0, run.output
    loads = run.modprobe
    assert loads.index(f"-qab {VIRTIO_PCI_ALIAS}") < loads.index("-qab virtio:d00000001v00001AF4")
    assert not any("d00001111" in call or "d00000002" in call for call in loads)


def test_ibft_with_a_nic_list_loads_the_list_and_its_bus(generate: Callable[..., Path]) -> None:
    hook = generate("--ibft", "--nic-module", "virtio_net") / "hooks/iscsi"
    run = run_runtime_hook(hook, ibft=True)
    assert run.status == 0, run.output
    assert "-qab virtio_pci virtio_net" in run.modprobe


def test_ibft_without_a_firmware_table_fails_at_once(generate: Callable[..., Path]) -> None:
    run = run_runtime_hook(generate("--ibft") / "hooks/iscsi", ibft=False)
    assert run.status == 1
    assert run.iscsistart == []
    assert "no iBFT table" in run.stdout


# --- the generic hook the package ships ------------------------------------------------


def test_generic_hook_does_nothing_without_iscsi_parameters() -> None:
    run = run_runtime_hook(GENERIC_HOOK, ("root=/dev/sda1", "ip=dhcp"))
    assert run.status == 0, run.output
    assert run.iscsistart == [] and run.modprobe == []
    assert "nothing requested" in run.stdout


def test_generic_hook_logs_in_from_netroot_with_the_image_initiator_name() -> None:
    run = run_runtime_hook(
        GENERIC_HOOK,
        (f"netroot=iscsi:192.0.2.10::::{TARGET}",),
        files={"/etc/iscsi/initiatorname.iscsi": f"## comment\nInitiatorName={INITIATOR}\n"},
    )
    assert run.status == 0, run.output
    assert run.iscsistart == [login_argv()]


def test_generic_hook_without_an_initiator_name_says_which_parameter_gives_one() -> None:
    run = run_runtime_hook(GENERIC_HOOK, (f"netroot=iscsi:192.0.2.10::::{TARGET}",))
    assert run.status == 1
    assert run.iscsistart == []
    assert "rd.iscsi.initiator=" in run.stdout


@pytest.mark.parametrize("flag", ["rd.iscsi.firmware=1", "iscsi_auto"])
def test_generic_hook_switches_to_ibft(flag: str) -> None:
    run = run_runtime_hook(GENERIC_HOOK, (flag,), network=False, ibft=True)
    assert run.status == 0, run.output
    assert run.iscsistart == [["-N"], ["-b", *SELF_LIMITS]]


def test_debian_parameters_alone_drive_the_generic_hook() -> None:
    run = run_runtime_hook(
        GENERIC_HOOK,
        (
            "iscsi_initiator=" + INITIATOR,
            "iscsi_target_name=" + TARGET,
            "iscsi_target_ip=192.0.2.10",
        ),
    )
    assert run.status == 0, run.output
    assert run.iscsistart == [login_argv()]
