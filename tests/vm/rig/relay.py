"""guestfwd helper: QEMU runs this once per guest connection to the portal,
with the guest's socket as stdin/stdout; it opens one loopback connection to
tgtd and copies bytes both ways until both sides are done.

QEMU also hands the guest socket over as stderr, so the rig starts this with
2>/dev/null: any error text would otherwise reach the guest as iSCSI data."""

import contextlib
import os
import selectors
import socket
import sys


def main() -> int:
    port = int(sys.argv[1])
    guest = socket.socket(fileno=os.dup(0))
    try:
        target = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:
        return 1  # closing the guest socket looks like a refused login
    target.settimeout(None)
    guest.setblocking(True)
    sel = selectors.DefaultSelector()
    peers = {guest: target, target: guest}
    for s in peers:
        sel.register(s, selectors.EVENT_READ)
    open_reads = 2
    while open_reads:
        for key, _ in sel.select():
            src = key.fileobj
            try:
                data = src.recv(65536)  # type: ignore[union-attr]
            except OSError:
                data = b""
            dst = peers[src]  # type: ignore[index]
            if data:
                try:
                    dst.sendall(data)
                except OSError:
                    return 0
            else:
                sel.unregister(src)
                open_reads -= 1
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)
    return 0


if __name__ == "__main__":
    sys.exit(main())
