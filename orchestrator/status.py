"""The verdict of one check, shared by doctor and verify."""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    ok = "ok"
    warn = "warn"
    fail = "fail"
    skip = "skip"  # not checked: what it needs already failed
