"""Names and secrets the tests share (a module of its own: two conftest.py files exist)."""

INITIATOR = "iqn.2011-03.org.example:client"
TARGET = "iqn.2011-03.org.example.storage:arch-root"
SECRET = "S3cr3t-chap-pw"  # 14 characters: inside RFC 3720's 12-16
IN_SECRET = "Mutual-secret-2"
