"""The pacman package: makepkg builds it from this checkout, and it holds what it should.

Off Arch this uses Debian's makepkg and pacman (see DESIGN.md, "Checking Arch artefacts
off Arch"). makepkg refuses to run as root, so when the tests run as root (as CI does) the
build runs as an unprivileged user made for it. The build includes the PKGBUILD's
check(): the test suite against the built wheel, as on an Arch machine.
"""

import gzip
import importlib.metadata
import io
import os
import pwd
import re
import shutil
import subprocess
import tarfile
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from iscsi_hookgen import __version__, clispec, completion

REPO = Path(__file__).resolve().parent.parent
PKGNAME = "iscsi-hookgen"
BUILDER = "iscsi-hookgen-build"
# Nothing from /usr/local or a Python version manager: the build uses the system's python
# with its build, installer and test modules, as makepkg does on Arch.
BUILD_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"
# What the checkout copy leaves out: VCS data, caches and earlier makepkg output.
LEFT_OUT = {".git", "src", "pkg", "build", "dist", "test-env", "test-dir"}
LEFT_OUT_ANYWHERE = shutil.ignore_patterns(
    "__pycache__", ".*_cache", ".hypothesis", "*.egg-info", "*.pkg.tar.*"
)


@dataclass(frozen=True)
class Build:
    tree: Path  # the copy of the checkout makepkg ran in
    package: Path
    env: dict[str, str]
    log: str


def run_as_builder(
    command: list[str], cwd: Path, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `command` with exactly `env`, as the build user when we are root."""
    prefix = ["runuser", "-u", BUILDER, "--"] if os.geteuid() == 0 else []
    environment = [f"{k}={v}" for k, v in env.items()]
    return subprocess.run(
        [*prefix, "env", "-i", *environment, *command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ensure_builder() -> None:
    """makepkg will not run as root: build as a system user without a home or a shell."""
    if os.geteuid() != 0:
        return
    try:
        pwd.getpwnam(BUILDER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home",
             "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", BUILDER],
            check=True,
        )  # fmt: skip


def give_to_builder(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, BUILDER, BUILDER)
        for entry in path.rglob("*"):
            os.lchown(entry, pwd.getpwnam(BUILDER).pw_uid, pwd.getpwnam(BUILDER).pw_gid)


def copy_checkout(destination: Path) -> None:
    for entry in REPO.iterdir():
        if entry.name in LEFT_OUT:
            continue
        if entry.is_dir():
            shutil.copytree(entry, destination / entry.name, ignore=LEFT_OUT_ANYWHERE)
        elif not entry.name.endswith((".pkg.tar.gz", ".pkg.tar.zst", ".pkg.tar.xz")):
            shutil.copy2(entry, destination / entry.name)


def missing_check_modules(env: dict[str, str], cwd: Path) -> Path | None:
    """A directory for PYTHONPATH with the test plugins the system python lacks.

    Debian packages pytest and hypothesis but not pytest-subprocess (Arch does:
    python-pytest-subprocess). The build gets the copy this test run uses, files as
    recorded in its wheel's RECORD, so check() runs the whole suite as on Arch.
    """
    probe = run_as_builder(["python3", "-c", "import pytest_subprocess"], cwd, env)
    if probe.returncode == 0:
        return None
    target = cwd.parent / "check-modules"
    distribution = importlib.metadata.distribution("pytest-subprocess")
    for file in distribution.files or ():
        if file.parts[0].startswith("..") or file.suffix == ".pyc":
            continue  # scripts outside site-packages, bytecode
        source = Path(str(distribution.locate_file(file)))
        (target / file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / file)
    return target


@pytest.fixture(scope="module")
def build() -> Iterator[Build]:
    ensure_builder()
    # Not under pytest's tmp_path: its parent directory is private to root.
    top = Path(tempfile.mkdtemp(prefix="iscsi-hookgen-makepkg-"))
    try:
        tree, home = top / "checkout", top / "home"
        tree.mkdir()
        home.mkdir()
        copy_checkout(tree)
        env = {
            "HOME": str(home),
            "PATH": BUILD_PATH,
            "LANG": "C.UTF-8",
            # Debian's python installs to /usr/local unless told that it is making a
            # distribution package; Arch's python installs to /usr anyway.
            "DEB_PYTHON_INSTALL_LAYOUT": "deb",
        }
        give_to_builder(top)
        plugins = missing_check_modules(env, tree)
        if plugins is not None:
            env["PYTHONPATH"] = str(plugins)
            give_to_builder(top)
        done = run_as_builder(
            ["makepkg", "--nodeps", "--noconfirm", "--noprogressbar"], tree, env, timeout=1200
        )
        log = done.stdout + done.stderr
        # check()'s pytest report is the end of stdout; makepkg's complaint ends stderr.
        assert done.returncode == 0, done.stdout[-5000:] + "\n--- stderr:\n" + done.stderr[-1500:]
        packages = sorted(tree.glob(f"{PKGNAME}-*.pkg.tar.*"))
        assert len(packages) == 1, packages
        yield Build(tree, packages[0], env, log)
    finally:
        shutil.rmtree(top)


def pkgbuild_value(name: str) -> str:
    done = subprocess.run(
        ["bash", "-c", f'source PKGBUILD && printf "%s\\n" "${{{name}[@]}}"'],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


# --- without a build -----------------------------------------------------------------


@pytest.mark.parametrize("script", ["PKGBUILD", f"{PKGNAME}.install"])
def test_pkgbuild_and_scriptlet_pass_bash_n_and_shellcheck(script: str) -> None:
    subprocess.run(["bash", "-n", script], cwd=REPO, check=True)
    # The PKGBUILD exclusions are the usual ones: variables makepkg reads (SC2034) or
    # sets (SC2154), and cd without || exit, as makepkg runs functions under set -e.
    excluded = ["-e", "SC2034,SC2154,SC2164"] if script == "PKGBUILD" else []
    subprocess.run(["shellcheck", "--shell=bash", *excluded, script], cwd=REPO, check=True)


def test_versions_agree() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert pkgbuild_value("pkgver").strip() == project["version"] == __version__


def test_scriptlet_prints_next_steps_and_runs_no_program() -> None:
    """Run every scriptlet function with no PATH: any external command would fail."""
    calls = {
        "post_install": "0.1.0-1",
        "post_upgrade": "0.1.0-2 0.1.0-1",
        "pre_remove": "0.1.0-1",
        "post_remove": "0.1.0-1",
    }
    for function, args in calls.items():
        done = subprocess.run(
            ["/bin/bash", "-euc", f'source "$0"; {function} {args}', f"{PKGNAME}.install"],
            cwd=REPO,
            env={"PATH": "/nonexistent"},
            capture_output=True,
            text=True,
            check=False,
        )
        assert (done.returncode, done.stderr) == (0, ""), function
        assert done.stdout.startswith("==> iscsi-hookgen: "), function
        if function != "post_remove":
            assert "mkinitcpio -P" in done.stdout, function
    done = subprocess.run(
        ["/bin/bash", "-c", 'source "$0"; post_install', f"{PKGNAME}.install"],
        cwd=REPO,
        env={"PATH": "/nonexistent"},
        capture_output=True,
        text=True,
        check=True,
    )
    for step in ("iscsi-hookgen --portal ADDRESS --target IQN", "iscsi-hookgen --ibft",
                 "HOOKS", "'net'", "ip="):  # fmt: skip
        assert step in done.stdout


# --- the build -----------------------------------------------------------------------


def test_srcinfo_is_in_sync(build: Build) -> None:
    done = run_as_builder(["makepkg", "--printsrcinfo"], build.tree, build.env)
    assert done.returncode == 0, done.stderr
    assert (REPO / ".SRCINFO").read_text() == done.stdout, (
        "regenerate it: makepkg --printsrcinfo > .SRCINFO"
    )


def test_check_ran_the_fast_suite_and_it_passed(build: Build) -> None:
    assert "Starting check()..." in build.log
    summary = re.findall(r"=+ (\d+) passed(.*) in [\d.]+s", build.log)
    assert summary, build.log[-3000:]
    passed, rest = summary[-1]
    assert int(passed) > 100
    assert "failed" not in rest and "error" not in rest and "skipped" not in rest, rest


def purelib(build: Build) -> str:
    """Where the build's python put the package (usr/lib/python3.X/site-packages on Arch)."""
    done = run_as_builder(
        ["python3", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        build.tree,
        build.env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().lstrip("/")


def listing(build: Build) -> dict[str, tuple[str, str, str]]:
    """path -> (mode string, owner, group), from bsdtar; files and directories alike."""
    done = subprocess.run(
        ["bsdtar", "-tvf", str(build.package)], capture_output=True, text=True, check=True
    )
    entries = {}
    for line in done.stdout.splitlines():
        fields = line.split(None, 8)
        entries[fields[8].rstrip("/")] = (fields[0], fields[2], fields[3])
    return entries


DATA_FILES = {
    "usr/lib/initcpio/install/iscsi": REPO / "initcpio/install/iscsi",
    "usr/lib/initcpio/hooks/iscsi": REPO / "initcpio/hooks/iscsi",
    "usr/share/doc/iscsi-hookgen/README.md": REPO / "README.md",
    "usr/share/licenses/iscsi-hookgen/LICENSE": REPO / "LICENSE",
    ".INSTALL": REPO / f"{PKGNAME}.install",
}
GENERATED = {
    "usr/share/man/man1/iscsi-hookgen.1.gz",
    "usr/share/bash-completion/completions/iscsi-hookgen",
    "usr/share/zsh/site-functions/_iscsi-hookgen",
}


def test_pacman_lists_every_file_where_arch_expects_it(build: Build) -> None:
    done = subprocess.run(
        ["pacman", "-Qlp", str(build.package)], capture_output=True, text=True, check=True
    )
    files = {
        line.removeprefix(f"{PKGNAME} /")
        for line in done.stdout.splitlines()
        if not line.endswith("/")
    }
    site = purelib(build)
    modules = {p.name for p in (REPO / "generator/iscsi_hookgen").glob("*.py")}
    templates = {p.name for p in (REPO / "generator/iscsi_hookgen/templates").iterdir()}
    assert modules >= {"cli.py", "manpage.py", "completion.py"} and templates
    python = {f"{site}/iscsi_hookgen/{m}" for m in modules}
    python |= {f"{site}/iscsi_hookgen/templates/{t}" for t in templates}
    python.add(f"{site}/iscsi_hookgen/py.typed")
    expected = {*DATA_FILES, *GENERATED, "usr/bin/iscsi-hookgen"} - {".INSTALL"}
    package_files = {f for f in files if not f.startswith(f"{site}/")}
    assert package_files == expected
    ours = {f for f in files if f.startswith(f"{site}/iscsi_hookgen/")}
    assert python <= ours
    assert all(f in python or "/__pycache__/" in f for f in ours), ours - python
    metadata = {f for f in files if f.startswith(site) and f not in ours}
    assert all(re.match(rf"{site}/iscsi_hookgen-{__version__}\.dist-info/", f) for f in metadata)


def test_modes_and_owners(build: Build) -> None:
    entries = listing(build)
    for path in {*DATA_FILES, *GENERATED} - {".INSTALL"}:
        assert entries[path] == ("-rw-r--r--", "root", "root"), path
    assert entries["usr/bin/iscsi-hookgen"] == ("-rwxr-xr-x", "root", "root")
    for path, (mode, owner, group) in entries.items():
        if path.startswith("."):
            continue  # pacman's metadata
        assert (owner, group) == ("root", "root"), path
        assert mode in {"drwxr-xr-x", "-rw-r--r--", "-rwxr-xr-x"}, (path, mode)


def members(build: Build) -> dict[str, bytes]:
    """The package's regular files. Debian's makepkg compresses with gzip, Arch's with
    zstd: bsdtar reads both and writes a plain tar for Python to read."""
    done = subprocess.run(
        ["bsdtar", "-cf", "-", f"@{build.package}"], capture_output=True, check=True
    )
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as archive:
        return {
            m.name: archive.extractfile(m).read()  # type: ignore[union-attr]
            for m in archive.getmembers()
            if m.isfile()
        }


def test_shipped_files_are_the_checkout_s(build: Build) -> None:
    files = members(build)
    for path, source in DATA_FILES.items():
        assert files[path] == source.read_bytes(), path


def test_man_page_and_completions_match_the_parser(build: Build, tmp_path: Path) -> None:
    files = members(build)
    program = clispec.program()
    assert files["usr/share/bash-completion/completions/iscsi-hookgen"].decode() == (
        completion.bash(program)
    )
    assert files["usr/share/zsh/site-functions/_iscsi-hookgen"].decode() == completion.zsh(program)
    page = tmp_path / "iscsi-hookgen.1.gz"
    page.write_bytes(files["usr/share/man/man1/iscsi-hookgen.1.gz"])
    assert gzip.decompress(page.read_bytes()).startswith(b'.\\" SPDX-License-Identifier: MIT')
    done = subprocess.run(
        ["man", "--warnings", "-l", str(page)],
        env={**os.environ, "MANWIDTH": "80"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert "--chap-secret-file FILE" in done.stdout


def test_pkginfo_declares_dependencies_and_scriptlet(build: Build) -> None:
    info = members(build)[".PKGINFO"].decode()
    fields: dict[str, list[str]] = {}
    for line in info.splitlines():
        if " = " in line and not line.startswith("#"):
            key, value = line.split(" = ", 1)
            fields.setdefault(key, []).append(value)
    assert fields["pkgname"] == [PKGNAME]
    assert fields["pkgver"] == [f"{__version__}-1"]
    assert fields["arch"] == ["any"]
    assert fields["license"] == ["MIT"]
    assert fields["depend"] == ["python", "python-jinja", "mkinitcpio", "open-iscsi"]
    assert fields["optdepend"] == ["mkinitcpio-nfs-utils: net hook for static-portal boot"]
    assert "python-pytest-subprocess" in fields["checkdepend"]


def test_installed_command_runs_from_the_package(build: Build, tmp_path: Path) -> None:
    """Unpack the package and run its iscsi-hookgen with the build's python."""
    root = tmp_path / "root"
    root.mkdir()
    subprocess.run(["bsdtar", "-xf", str(build.package), "-C", str(root)], check=True)
    site = root / purelib(build)
    env = {"PATH": BUILD_PATH, "PYTHONPATH": str(site), "LANG": "C.UTF-8"}
    done = subprocess.run(
        [str(root / "usr/bin/iscsi-hookgen"), "--version"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, f"iscsi-hookgen {__version__}\n"), done.stderr
    done = subprocess.run(
        [str(root / "usr/bin/iscsi-hookgen"), "--generic", "--output", str(tmp_path / "out")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # The generic hook the command writes is the one the package ships.
    for name in ("install/iscsi", "hooks/iscsi"):
        assert (tmp_path / "out" / name).read_bytes() == (
            root / "usr/lib/initcpio" / name
        ).read_bytes()
