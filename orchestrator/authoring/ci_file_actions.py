"""CI file writers (authoring layer): the GitHub actions the generated workflows use, each pinned
by the full commit SHA of a release tag, the tag in a comment beside it (`uses: OWNER/REPO@SHA #
vX.Y.Z`, the form Dependabot keeps up to date).

Each row was read from the action's own repository (its tags: `git show-ref --tags`, the tag's
commit), on the date given; tests/test_ci_files.py checks each against GitHub with
`git ls-remote` where GitHub can be reached. At their current major versions: upload-artifact v7
still fails on a name already uploaded in the run unless `overwrite: true` (its action.yml at
bbbca2dd, input `overwrite`), download-artifact v8 takes `pattern` and `merge-multiple`.
"""

from __future__ import annotations

from typing import NamedTuple


class Pin(NamedTuple):
    tag: str
    sha: str
    read: str  # the day the tag's commit was read from the action's repository


ACTIONS = {
    "actions/checkout": Pin("v7.0.1", "3d3c42e5aac5ba805825da76410c181273ba90b1", "2026-12-07"),
    "actions/setup-python": Pin("v7.0.0", "5fda3b95a4ea91299a34e894583c3862153e4b97", "2026-12-07"),
    "actions/upload-artifact": Pin("v7.0.0", "bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "2026-12-07"),
    "actions/download-artifact": Pin("v8.0.1", "3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c", "2026-12-07"),
    "docker/login-action": Pin("v4.1.0", "4907a6ddec9925e35a0a9e82d7399ccc52663121", "2026-12-07"),
    "docker/setup-qemu-action": Pin("v4.2.0", "96fe6ef7f33517b61c61be40b68a1882f3264fb8", "2026-12-07"),
    "docker/setup-buildx-action": Pin("v4.3.0", "37fe631027851001ddb9b187196cc803df7f5f0e", "2026-12-07"),
    "sigstore/cosign-installer": Pin("v4.1.2", "6f9f17788090df1f26f669e9d70d6ae9567deba6", "2026-12-07"),
}


def uses(action: str) -> str:
    """`OWNER/REPO@SHA # TAG`, for a `uses:` line."""
    pin = ACTIONS[action]
    return f"{action}@{pin.sha} # {pin.tag}"
