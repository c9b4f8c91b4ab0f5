"""What the user asked for, by option group: the values of the options every command that takes
the group shares (tags, builder, outputs, verification, signing), as BuildRequest and the
release's arguments nest them. The options themselves are defined once, in cli/options.py."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.publish.signing import Signing


@dataclass(frozen=True)
class TagOptions:
    """-t, --image, --tag-rule, --flavor: named as `tags.tagging.plan_tags` takes them."""

    literal: tuple[str, ...] = ()  # -t: tags as written
    images: tuple[str, ...] = ()  # --image: repositories the rules tag
    rules: tuple[str, ...] = ()  # --tag-rule: metadata-action rules
    flavor: tuple[str, ...] = ()  # --flavor: metadata-action flavor lines


@dataclass(frozen=True)
class BuilderOptions:
    """--builder, --install-emulators: the buildx builder to build on, and whether missing QEMU
    handlers are installed first."""

    name: str | None = None  # --builder: an existing buildx builder
    install_emulators: bool | None = None  # None: the profile's


@dataclass(frozen=True)
class OutputOptions:
    """The files the result is written to, beside what is printed."""

    metadata_file: str | None = None  # the result JSON (checked before building)
    report: str | None = None  # a self-contained HTML report
    output_env: str | None = None  # ORCH_DIGEST... as a dotenv file


@dataclass(frozen=True)
class VerificationOptions:
    """--deep: whether verification reads each image's binaries, not only its index and configs."""

    deep: bool = False  # down to each image's binaries (before any tag moves, when publishing)


@dataclass(frozen=True)
class SigningOptions:
    """--sign, --sign-key, --tlog, --sign-recursive: as given, before the profile's `signing:`
    fills the rest and `signing()` checks them."""

    sign: bool = False  # cosign signs the verified index before any tag moves
    key: str | None = None  # --sign-key (or $ORCH_SIGN_KEY); None: keyless
    tlog: bool | None = None  # None: off with a key, on keyless
    recursive: bool = False  # each platform's manifest too

    def signing(self, settings: Mapping[str, Any] | None = None) -> Signing | None:
        """The signing asked for, the command line's values over `settings` (a profile's
        `signing:`), checked before anything is built (cosign there, the key a file); None when
        nothing is to be signed."""
        settings = settings or {}
        if not (self.sign or settings.get("sign")):
            return None
        from orchestrator.publish.signing import Signing

        return Signing.asked(self.key or settings.get("key"), self.tlog if self.tlog is not None else settings.get("tlog"),
                             self.recursive or bool(settings.get("recursive")))
