"""Names the rig's target, initiator and guest share (the baseline hooks in
tests/vm/baseline spell them out as the wiki's hand-written hooks would)."""

TARGET_IQN = "iqn.2026-11.org.example.vmtest:root"
INITIATOR_IQN = "iqn.2026-11.org.example.vmtest:initiator"
PORTAL = "10.0.2.100"
GUEST_IP = "10.0.2.15"
GATEWAY = "10.0.2.2"
NETMASK = "255.255.255.0"
# kernel-style ip= for the net hook: client::gateway:netmask:host:device:autoconf
IP_STATIC = f"ip={GUEST_IP}::{GATEWAY}:{NETMASK}:vmtest:eth0:none"
