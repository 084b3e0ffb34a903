"""An iSCSI Boot Firmware Table, written from the iBFT specification (v1.03,
layout as Linux's iscsi_ibft driver reads it), for QEMU's -acpitable: what a
NIC's iSCSI boot ROM would leave for the OS.

Table: ACPI header (36 bytes) + 12 reserved, then the control structure and,
8-byte aligned, the initiator, NIC and target structures, then a heap with
the strings; structure offsets count from the start of the table. Addresses
are 16-byte IPv6 form (IPv4 as ::ffff:a.b.c.d); multi-byte fields are
little-endian; every byte of the table sums to zero."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from .names import GATEWAY, GUEST_IP, INITIATOR_IQN, PORTAL, TARGET_IQN

# struct header: id, version, length, index, flags
ID_CONTROL, ID_INITIATOR, ID_NIC, ID_TARGET = 1, 2, 3, 4
FLAGS_VALID_AND_BOOT = 0x03  # block valid, firmware boot selected
ORIGIN_MANUAL = 1


@dataclass(frozen=True)
class Ibft:
    initiator: str = INITIATOR_IQN
    target: str = TARGET_IQN
    target_ip: str = PORTAL
    target_port: int = 3260
    lun: int = 1
    nic_ip: str = GUEST_IP
    prefix: int = 24
    gateway: str = GATEWAY
    mac: str = "52:54:00:12:34:56"
    pci_slot: int = 3  # the rig puts the NIC at 00:03.0


def _ip(text: str) -> bytes:
    addr = ipaddress.ip_address(text)
    if addr.version == 4:
        return ipaddress.IPv6Address("::ffff:" + text).packed
    return addr.packed


def _align(n: int) -> int:
    return (n + 7) & ~7


def _hdr(kind: int, length: int, flags: int = FLAGS_VALID_AND_BOOT) -> bytes:
    return struct.pack("<BBHBB", kind, 1, length, 0, flags)


def build(t: Ibft) -> bytes:
    control_off = 48
    initiator_off = _align(control_off + 18)
    nic_off = _align(initiator_off + 74)
    target_off = _align(nic_off + 102)
    heap_off = _align(target_off + 54)

    heap = bytearray()

    def string(s: str) -> tuple[int, int]:
        off = heap_off + len(heap)
        heap.extend(s.encode() + b"\0")
        return len(s), off

    ini_len, ini_pos = string(t.initiator)
    tgt_len, tgt_pos = string(t.target)

    control = _hdr(ID_CONTROL, 18, 0) + struct.pack(
        "<HHHHHH", 0, initiator_off, nic_off, target_off, 0, 0
    )
    initiator = _hdr(ID_INITIATOR, 74) + bytes(64) + struct.pack("<HH", ini_len, ini_pos)
    nic = (
        _hdr(ID_NIC, 102)
        + _ip(t.nic_ip)
        + struct.pack("<BB", t.prefix, ORIGIN_MANUAL)
        + _ip(t.gateway)
        + bytes(16)
        + bytes(16)
        + bytes(16)
        + struct.pack("<H", 0)
        + bytes.fromhex(t.mac.replace(":", ""))
        + struct.pack("<HHH", t.pci_slot << 3, 0, 0)
    )
    lun = struct.pack(">H", t.lun) + bytes(6)  # SCSI LUN, peripheral addressing
    target = (
        _hdr(ID_TARGET, 54)
        + _ip(t.target_ip)
        + struct.pack("<H", t.target_port)
        + lun
        + struct.pack("<BB", 0, 0)  # no CHAP; NIC 0
        + struct.pack("<HH", tgt_len, tgt_pos)
        + bytes(16)
    )
    assert (len(control), len(initiator), len(nic), len(target)) == (18, 74, 102, 54)

    body = bytearray(heap_off + len(heap))
    for off, part in (
        (control_off, control),
        (initiator_off, initiator),
        (nic_off, nic),
        (target_off, target),
        (heap_off, bytes(heap)),
    ):
        body[off : off + len(part)] = part
    header = struct.pack(
        "<4sIBB6s8sI4sI", b"iBFT", len(body), 1, 0, b"VMTEST", b"VMTESTIB", 1, b"VMTS", 1
    )
    body[0:36] = header
    body[9] = (-sum(body)) & 0xFF
    return bytes(body)
