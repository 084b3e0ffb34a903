"""The VM test rig: a Debian kernel booted under QEMU from an initramfs built by
our own small assembler, with its root filesystem on a tgtd iSCSI target that
is reachable only through QEMU's user network and loopback."""
