"""The staged index read back from the registry as soon as buildx says its push is done.

After the exporter's step ends (`#13 DONE`), buildx still resolves the provenance for its
metadata file and exits: 10-20 ms most runs, over 100 ms some. The read-back (the index, each
image's manifest and config, every byte checked against its digest) and where the tags point now
need only the registry, so they start then, on a thread. The configs, the slowest reads of a
registry, start sooner: when buildx says its layers (configs among them) are pushed, before it
pushes the manifests. The publish takes what was read when buildx has exited with success and
its metadata file names the same index. Otherwise (a failed build, a retried push, another
digest, a read that failed) it is dropped and the publish reads the index as before; a read that
failed here is read again there, so its error is the one the user sees. Nothing moves on what is
read here before buildx has exited with success.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.docker.progress import export_step, exported_config, layers_pushed, step_done
from orchestrator.errors import OrchError
from orchestrator.model.references import Reference
from orchestrator.workers import Helper, both, parallel_map

if TYPE_CHECKING:
    from orchestrator.image.model import Inspection
    from orchestrator.publish.stage import Staged


@dataclass(frozen=True)
class ReadBack:
    """The staged index as the registry holds it, and where each tag pointed when it was read."""

    staged: Staged
    inspection: Inspection
    befores: list[str | None]


def _configs(repository: Reference, digests: list[str]) -> dict[str, bytes]:
    """The configs buildx pushed, read from the registry (each checked against its digest) while
    buildx pushes the manifests; one that cannot be read is left for the read-back."""
    from orchestrator.registry.client import Registry

    registry = Registry.of(repository)

    def read(digest: str) -> tuple[str, bytes | None]:
        try:
            return digest, registry.blob_bytes(repository.repository, digest)
        except OrchError:
            return digest, None

    return {digest: body for digest, body in parallel_map(read, digests, len(digests)) if body is not None}


def _read_back(repository: Reference, digest: str, tags: tuple[Reference, ...],
               configs: Helper[dict[str, bytes]] | None = None) -> ReadBack:
    from orchestrator.image.read import read_image
    from orchestrator.publish.promote import current_digests
    from orchestrator.publish.stage import already_staged

    def staged_and_read() -> tuple[Staged, Inspection]:
        staged = already_staged(repository, digest)
        return staged, read_image(staged.ref, staged.index, configs=configs.result() if configs else None)

    befores, (staged, inspection) = both(lambda: current_digests(tags), staged_and_read)
    return ReadBack(staged, inspection, befores)


class EarlyReadBack:
    """Fed buildx's progress lines (`feed`); starts the read-back of the index the exporter
    pushed, and of where `tags` point, when its step is done. `taken(digest)` is what it read,
    for that digest only."""

    def __init__(self, repository: Reference, tags: tuple[Reference, ...]) -> None:
        self.repository = repository
        self.tags = tags
        self.exported: tuple[str, str] | None = None  # (step, digest) the exporter named last
        self.config_digests: list[str] = []  # the configs it named
        self._configs: Helper[dict[str, bytes]] | None = None
        self._read: Helper[ReadBack] | None = None

    def feed(self, line: str) -> None:
        if self._read is not None:
            return
        exported, config = export_step(line), exported_config(line)
        if exported is not None:
            self.exported = exported
        elif config is not None:
            self.config_digests.append(config)
        elif self._configs is None and self.config_digests and layers_pushed(line):
            digests = list(dict.fromkeys(self.config_digests))
            self._configs = Helper(lambda: _configs(self.repository, digests), "orch-read-configs")
        elif self.exported is not None and step_done(line) == self.exported[0]:
            digest, configs = self.exported[1], self._configs
            self._read = Helper(lambda: _read_back(self.repository, digest, self.tags, configs), "orch-read-back")

    def taken(self, digest: str | None) -> ReadBack | None:
        """What the early read found, when it was of `digest` and succeeded."""
        if self._read is None or self.exported is None or self.exported[1] != digest:
            return None
        try:
            return self._read.result()
        except OrchError:
            return None  # read again after the build: that read's error is the one to report

    def close(self) -> None:
        for helper in (self._read, self._configs):
            if helper is not None:
                helper.close()

    def __enter__(self) -> EarlyReadBack:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
