"""What the user asked for, validated: the single source of values for the templates.

Every value that ends up in a generated script passes through one of the parse_*
functions below. They raise InputError with a message that names the bad value
and says what is accepted; the CLI prints it as one line and exits 2.
"""

import enum
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path


class InputError(ValueError):
    """Bad input from the user: the CLI prints the message as one line and exits 2."""


class Mode(enum.Enum):
    """How the runtime hook finds its target."""

    STATIC = "static"  # portal, target and initiator baked in at generation time
    IBFT = "ibft"  # the firmware's iBFT table configures network and target
    GENERIC = "generic"  # nothing baked in: the kernel command line says everything


DEFAULT_PORT = 3260
DEFAULT_TPGT = 1

# The open-iscsi README's settings for a root disk: no-op pings off, so that a
# busy link is not mistaken for a dead one, and a day-long replacement timeout,
# so that I/O waits for the session to come back instead of failing the root fs.
RESILIENT_PARAMS: tuple[tuple[str, str], ...] = (
    ("node.conn[0].timeo.noop_out_interval", "0"),
    ("node.conn[0].timeo.noop_out_timeout", "0"),
    ("node.session.timeo.replacement_timeout", "86400"),
)

# NIC drivers whose device sits on a bus that drivers/net does not provide:
# without autodetect nothing else puts the bus driver in the image or loads it.
NIC_BUS_MODULES: dict[str, tuple[str, ...]] = {
    "virtio_net": ("virtio_pci",),
    "hv_netvsc": ("hv_vmbus",),
}

# RFC 3720 3.2.6: CHAP secrets should be 12 to 16 bytes; iscsistart accepts up to 256.
CHAP_SECRET_RECOMMENDED = range(12, 17)
CHAP_SECRET_MAX = 256


@dataclass(frozen=True)
class Portal:
    address: str  # an IPv4 or IPv6 literal, without brackets
    port: int = DEFAULT_PORT

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class Chap:
    username: str
    secret: str = field(repr=False)


@dataclass(frozen=True)
class Retry:
    """The login's bound: attempts x (timeout + delay) stays about a minute by default.

    A target that comes up a few attempts late still gets logged in to; a dead
    one sends the boot to the rescue shell instead of hanging it.
    """

    attempts: int = 6
    delay: int = 2  # seconds between attempts
    attempt_timeout: int = 8  # seconds one iscsistart call may take
    disk_timeout: int = 20  # seconds to wait for the session's disk after login
    # systemd images only, where the hook applies ip= itself:
    nic_timeout: int = 20  # seconds to wait for the NIC to appear
    dhcp_timeout: int = 30  # seconds udhcpc may take for a lease

    def worst_case_seconds(self) -> int:
        """How long the login can take before it gives up, network set-up included."""
        network = self.nic_timeout + self.dhcp_timeout
        per_attempt = self.attempt_timeout + self.delay
        return network + self.attempts * per_attempt + self.disk_timeout


@dataclass(frozen=True)
class HookConfig:
    mode: Mode
    initiator: str | None = None
    target: str | None = None
    portal: Portal | None = None
    tpgt: int = DEFAULT_TPGT
    params: tuple[tuple[str, str], ...] = ()
    chap: Chap | None = None
    chap_in: Chap | None = None
    retry: Retry = Retry()
    nic_modules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.mode is Mode.STATIC and not (self.initiator and self.target and self.portal):
            raise InputError("static-portal mode needs an initiator, a target and a portal")
        if self.mode is not Mode.STATIC and (self.target or self.portal or self.initiator):
            raise InputError(
                f"{self.mode.value} mode takes no --initiator, --target or --portal: "
                "those come from the firmware or the kernel command line"
            )
        if self.chap_in and not self.chap:
            raise InputError("mutual CHAP (--chap-in-user) needs outgoing CHAP (--chap-user) too")

    @property
    def has_secrets(self) -> bool:
        return self.chap is not None

    @property
    def nic_modules_with_buses(self) -> tuple[str, ...]:
        """The NIC list with each driver's bus driver in front of it, without repeats."""
        ordered: list[str] = []
        for module in self.nic_modules:
            for needed in (*NIC_BUS_MODULES.get(module.replace("-", "_"), ()), module):
                if needed not in ordered:
                    ordered.append(needed)
        return tuple(ordered)


# iSCSI names, RFC 3720 3.2.6.3. Upper case and "_" are outside the RFC's
# normalised form but appear in shipping targets (Synology, some LIO setups);
# iscsistart passes them through, so they are accepted.
_IQN = re.compile(
    r"iqn\.[0-9]{4}-(0[1-9]|1[0-2])"
    r"\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"(:[A-Za-z0-9._:-]*)?"
)
_EUI = re.compile(r"eui\.[0-9A-Fa-f]{16}")
_NAA = re.compile(r"naa\.([0-9A-Fa-f]{16}|[0-9A-Fa-f]{32})")
_ISCSI_NAME_MAX = 223
ISCSI_NAME_FORMS = (
    "iqn.YYYY-MM.reversed.domain[:identifier], eui.<16 hex digits> or naa.<16|32 hex>"
)


def parse_iscsi_name(value: str, what: str) -> str:
    if len(value.encode()) > _ISCSI_NAME_MAX:
        raise InputError(f"{what} {value!r} is longer than {_ISCSI_NAME_MAX} bytes (RFC 3720)")
    if not any(p.fullmatch(value) for p in (_IQN, _EUI, _NAA)):
        raise InputError(f"{what} {value!r} is not an iSCSI name; expected {ISCSI_NAME_FORMS}")
    return value


def parse_portal(value: str) -> Portal:
    """ADDRESS, ADDRESS:PORT, [IPV6] or [IPV6]:PORT; an IPv6 literal alone needs no brackets."""
    host, port_text = value, ""
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise InputError(f"portal {value!r} is malformed; expected [IPV6]:PORT")
        port_text = rest[1:]
        if rest and not port_text:
            raise InputError(f"portal {value!r} has an empty port; expected 1-65535")
    elif value.count(":") == 1:
        host, _, port_text = value.partition(":")
        if not port_text:
            raise InputError(f"portal {value!r} has an empty port; expected 1-65535")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise InputError(
            f"portal {value!r} is not an IP address: the initramfs has no DNS to resolve a "
            "hostname; give an IPv4 address or an IPv6 address (in [brackets] with a port)"
        ) from None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        raise InputError(f"portal {value!r} has a zone index; give a global or ULA IPv6 address")
    if address.is_unspecified or address.is_multicast:
        raise InputError(f"portal {value!r} is not a unicast address a target can listen on")
    port = parse_number(port_text, "portal port", 1, 65535) if port_text else DEFAULT_PORT
    return Portal(str(address), port)


def parse_number(value: str, what: str, low: int, high: int) -> int:
    if not re.fullmatch(r"[0-9]+", value) or not low <= int(value) <= high:
        raise InputError(f"{what} {value!r} is not a whole number from {low} to {high}")
    return int(value)


# iscsid.conf names as iscsistart -P takes them: node.session.timeo.replacement_timeout,
# node.conn[0].iscsi.MaxXmitDataSegmentLength, iface.transport_name, ...
_PARAM_NAME = re.compile(r"(node|iface)(\.[A-Za-z0-9_]+(\[[0-9]+\])?)+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def parse_param(value: str) -> tuple[str, str]:
    name, equals, setting = value.partition("=")
    if not equals or not _PARAM_NAME.fullmatch(name):
        raise InputError(
            f"-P {value!r} is not NAME=VALUE with an iscsid.conf name "
            "(node.… or iface.…, e.g. node.session.timeo.replacement_timeout=86400)"
        )
    if ".auth." in name:
        raise InputError(
            f"-P {name} would put CHAP settings on the command line; "
            "use --chap-user and --chap-secret-file"
        )
    if not setting or _CONTROL.search(setting):
        raise InputError(
            f"-P {name}: value {setting!r} must be non-empty without control characters"
        )
    return name, setting


_MODULE = re.compile(r"[A-Za-z0-9_-]+")


def parse_module(value: str) -> str:
    if not _MODULE.fullmatch(value):
        raise InputError(
            f"--nic-module {value!r} is not a kernel module name (letters, digits, '_' and '-')"
        )
    return value


_CHAP_USER = re.compile(r"[\x21-\x7e]+")


def parse_chap_user(value: str, option: str) -> str:
    if len(value) > CHAP_SECRET_MAX or not _CHAP_USER.fullmatch(value):
        raise InputError(
            f"{option} {value!r} must be 1-{CHAP_SECRET_MAX} printable characters without spaces"
        )
    return value


def read_chap_secret(path: Path, option: str) -> tuple[str, str | None]:
    """Read a CHAP secret from a file: returns the secret and a warning, if any.

    The secret never goes through argv; one trailing newline is dropped, as
    `echo secret > file` leaves one. Messages never contain the secret.
    """
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"{option} {str(path)!r}: cannot read: {e.strerror}") from None
    text = raw.removesuffix(b"\n").removesuffix(b"\r")
    try:
        secret = text.decode("ascii")
    except UnicodeDecodeError:
        raise InputError(f"{option} {str(path)!r}: the secret must be ASCII text") from None
    if not secret or len(secret) > CHAP_SECRET_MAX or _CONTROL.search(secret):
        raise InputError(
            f"{option} {str(path)!r}: the secret must be 1-{CHAP_SECRET_MAX} characters "
            "without control characters or inner newlines"
        )
    warning = None
    if len(secret) not in CHAP_SECRET_RECOMMENDED:
        warning = (
            f"{option} {str(path)!r}: the secret has {len(secret)} characters; RFC 3720 asks "
            "for 12 to 16 and many targets refuse others"
        )
    return secret, warning


def read_initiator_name(root: Path) -> str:
    """The InitiatorName= from ROOT/etc/iscsi/initiatorname.iscsi, as open-iscsi writes it."""
    path = root / "etc/iscsi/initiatorname.iscsi"
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        raise InputError(
            f"no --initiator given and {path} cannot be read; install open-iscsi "
            "(it writes that file) or pass --initiator iqn.YYYY-MM.domain:name"
        ) from None
    for line in lines:
        key, equals, value = line.strip().partition("=")
        if equals and key.strip() == "InitiatorName":
            return parse_iscsi_name(value.strip(), f"InitiatorName in {path}")
    raise InputError(f"{path} has no InitiatorName= line; pass --initiator")
