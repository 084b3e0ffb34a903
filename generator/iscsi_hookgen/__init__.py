"""iscsi-hookgen: mkinitcpio hooks that boot Arch Linux from an iSCSI root disk."""

__version__ = "0.1.0"
