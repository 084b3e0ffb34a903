"""Boot benchmark: our generated hooks against the ArchWiki's hand-written ones.

Same VM, same kernel, same tgtd target and root disk as tests/vm; at least five
interleaved boots per variant (one round boots every variant once, so a slow
spell of the host hits all of them alike). Prints medians; it is not a test.

Times are the guest's /proc/uptime, printed by the rig's /init around each
hook: "hook" = the iscsi run_hook from start to return; "root dev" = when the
root device exists; "marker" = when the real root's /sbin/init runs.
"wall" is the host's seconds from QEMU start to power-off. Image bytes are the
zstd-compressed initramfs.

    python3 bench/vm_boot.py [--rounds 5]
    python3 bench/vm_boot.py --dead-target 240    # how each hook ends when nothing answers
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "vm"))

from rig import ibft, names  # noqa: E402
from rig.hookgen import generate  # noqa: E402
from rig.host import accelerator, find_kernel, require_tools  # noqa: E402
from rig.rootfs import build_root_image  # noqa: E402
from rig.scenario import Outcome, Rig  # noqa: E402

BASELINE = REPO / "tests" / "vm" / "baseline"
WITH_UDEV_STATIC = ["base", "udev", "net", "iscsi", "block", "filesystems"]
WITH_UDEV_IBFT = ["base", "udev", "iscsi", "block", "filesystems"]
NO_UDEV_IBFT = ["base", "iscsi", "block", "filesystems"]
STATIC_APPEND = f"root=/dev/sda {names.IP_STATIC}"
IBFT_APPEND = "root=/dev/sda"


@dataclass(frozen=True)
class Variant:
    name: str
    mode: str  # static | ibft: which baseline it is compared with
    image: Path
    append: str
    ibft: bool


@dataclass
class Samples:
    hook: list[float]
    rootdev: list[float]
    marker: list[float]
    wall: list[float]
    failed: int = 0


def measure(out: Outcome, samples: Samples) -> None:
    facts = out.marker
    start = out.time_of("start run_hook iscsi")
    end = out.time_of("end run_hook iscsi")
    rootdev = out.time_of("rootdev")
    if facts is None or start is None or end is None or rootdev is None:
        samples.failed += 1
        print(f"  boot failed, see {out.workdir}", file=sys.stderr)
        return
    samples.hook.append(end - start)
    samples.rootdev.append(rootdev)
    samples.marker.append(float(facts["uptime"]))
    samples.wall.append(out.result.seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workdir", type=Path, help="keep consoles and images here")
    parser.add_argument("--dead-target", type=float, metavar="SECONDS",
                        help="instead: boot each static variant once with nothing at the"
                        " portal, killing it after SECONDS, and report how it ends")  # fmt: skip
    args = parser.parse_args()

    require_tools()
    kernel = find_kernel()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="vmbench."))
    workdir.mkdir(parents=True, exist_ok=True)
    rig = Rig(kernel, workdir, build_root_image(workdir / "root.img"))
    static_args = ("--portal", names.PORTAL, "--target", names.TARGET_IQN,
                   "--initiator", names.INITIATOR_IQN)  # fmt: skip
    gen = workdir / "generated"
    ours_static = generate(gen / "static", *static_args)
    ours_static_nic = generate(gen / "static-nic", *static_args, "--nic-module", "virtio_net")
    ours_ibft = generate(gen / "ibft", "--ibft")
    ours_ibft_nic = generate(gen / "ibft-nic", "--ibft", "--nic-module", "virtio_net")

    variants = [
        Variant("static baseline (wiki)", "static",
                rig.image("b-static", WITH_UDEV_STATIC, [BASELINE / "static"]),
                STATIC_APPEND, False),
        Variant("static ours", "static",
                rig.image("o-static", WITH_UDEV_STATIC, [ours_static]), STATIC_APPEND, False),
        Variant("static ours --nic-module virtio_net", "static",
                rig.image("o-static-nic", WITH_UDEV_STATIC, [ours_static_nic]),
                STATIC_APPEND, False),
        Variant("ibft baseline (wiki)", "ibft",
                rig.image("b-ibft", WITH_UDEV_IBFT, [BASELINE / "ibft"]), IBFT_APPEND, True),
        Variant("ibft ours", "ibft",
                rig.image("o-ibft", WITH_UDEV_IBFT, [ours_ibft]), IBFT_APPEND, True),
        Variant("ibft ours --nic-module virtio_net", "ibft",
                rig.image("o-ibft-nic", WITH_UDEV_IBFT, [ours_ibft_nic]), IBFT_APPEND, True),
        Variant("ibft ours --nic-module virtio_net, no udev", "ibft",
                rig.image("o-ibft-nic-noudev", NO_UDEV_IBFT, [ours_ibft_nic]),
                IBFT_APPEND, True),
    ]  # fmt: skip
    table = workdir / "ibft.bin"
    table.write_bytes(ibft.build(ibft.Ibft()))

    if args.dead_target:
        dead = [v for v in variants if v.mode == "static" and "nic" not in v.name]
        return dead_target(rig, dead, args.dead_target)

    results = {v.name: Samples([], [], [], []) for v in variants}
    print(f"kernel {kernel.version}, accel {accelerator()}, {args.rounds} rounds, work {workdir}",
          file=sys.stderr)  # fmt: skip
    for round_no in range(args.rounds):
        for i, v in enumerate(variants):
            print(f"round {round_no + 1}/{args.rounds}: {v.name}", file=sys.stderr)
            out = rig.boot(f"r{round_no}-v{i}", v.image, v.append, timeout=300,
                           acpi_tables=(table,) if v.ibft else ())  # fmt: skip
            measure(out, results[v.name])

    def med(xs: list[float]) -> float:
        return statistics.median(xs) if xs else float("nan")

    base = {v.mode: results[v.name] for v in variants if "baseline" in v.name}
    base_bytes = {v.mode: v.image.stat().st_size for v in variants if "baseline" in v.name}
    print(
        f"\nmedians of {args.rounds} interleaved boots; TCG={accelerator() == 'tcg'}; "
        "ratio = ours / wiki baseline, same mode"
    )
    head = ("variant", "image bytes", "hook s", "root dev s", "marker s", "wall s", "ok")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for v in variants:
        s, b = results[v.name], base[v.mode]
        size = v.image.stat().st_size
        row = [v.name, f"{size:,}"]
        for mine, theirs in ((s.hook, b.hook), (s.rootdev, b.rootdev), (s.marker, b.marker),
                             (s.wall, b.wall)):  # fmt: skip
            cell = f"{med(mine):.2f}"
            if "baseline" not in v.name:
                cell += f" ({med(mine) / med(theirs):.2f}x)"
            row.append(cell)
        if "baseline" not in v.name:
            row[1] += f" ({size / base_bytes[v.mode]:.2f}x)"
        row.append(f"{len(s.hook)}/{len(s.hook) + s.failed}")
        print("| " + " | ".join(row) + " |")
    print(
        f"\nHOOKS: static {' '.join(WITH_UDEV_STATIC)}; ibft {' '.join(WITH_UDEV_IBFT)}"
        f" (no udev: {' '.join(NO_UDEV_IBFT)}). The net hook adds every drivers/net"
        " module itself, so --nic-module shrinks only images without net (iBFT)."
    )
    return 0 if all(r.failed == 0 for r in results.values()) else 1


def dead_target(rig: Rig, variants: list[Variant], seconds: float) -> int:
    print("| variant (nothing answers at the portal) | outcome | hook s | wall s |")
    print("|---|---|---|---|")
    for i, v in enumerate(variants):
        out = rig.boot(f"dead-v{i}", v.image, v.append, timeout=seconds, target=False)
        start, end = out.time_of("start run_hook iscsi"), out.time_of("end run_hook iscsi")
        if out.result.timed_out:
            outcome, hook = f"still hanging at {seconds:.0f} s, killed", "-"
        else:
            outcome = f"rescue: {out.rescue}" if out.rescue else "powered off"
            hook = f"{end - start:.1f}" if start is not None and end is not None else "-"
        print(f"| {v.name} | {outcome} | {hook} | {out.result.seconds:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
