"""Names and secrets the tests share (a module of its own: two conftest.py files exist)."""

INITIATOR = "iqn.2011-03.org.example:client"
TARGET = "iqn.2011-03.org.example.storage:arch-root"
SECRET = "S3cr3t-chap-pw"  # 14 characters: inside RFC 3720's 12-16
IN_SECRET = "Mutual-secret-2"

# What the hook always asks of iscsistart so that an attempt ends by itself
# within its default 8-second bound: one login retry, login timeout (8 - 1) / 2 s.
SELF_LIMITS = [
    "-P",
    "node.session.initial_login_retry_max=1",
    "-P",
    "node.conn[0].timeo.login_timeout=3",
]
# --resilient, as iscsistart receives it.
RESILIENT_ARGS = [
    "-P",
    "node.conn[0].timeo.noop_out_interval=0",
    "-P",
    "node.conn[0].timeo.noop_out_timeout=0",
    "-P",
    "node.session.timeo.replacement_timeout=86400",
]
