"""verify --deep: ELF reading, layer streaming, and the real registry (with auth)."""

from __future__ import annotations

import gzip
import io
import json
import struct
import subprocess
import tarfile
import warnings
from pathlib import Path

import pytest

from orchestrator.image.deep import _Layers, executable_candidates, follow
from orchestrator.image.elf import check_binary, parse_elf
from orchestrator.model.platform_parse import parse
from orchestrator.registry.auth import Credentials, credentials_for

from .conftest import BUSYBOX_FOR_PLATFORM, buildx_push, docker_config_dir, start_registry
from .test_build import orch

# -- ELF --------------------------------------------------------------------


def elf(machine: int, bits: int = 64, little: bool = True, interp: bool = False, arm_attrs: bytes | None = None) -> bytes:
    """A minimal ELF file: header, optional PT_INTERP, optional .ARM.attributes section."""
    e = "<" if little else ">"
    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1 if little else 2, 1]) + b"\0" * 9
    if bits == 64:
        header_size, ph_size, sh_size = 64, 56, 64
    else:
        header_size, ph_size, sh_size = 52, 32, 40
    phnum = 1 if interp else 0
    body = b"\0" * (ph_size * phnum)
    if interp:
        body = struct.pack(e + "I", 3) + body[4:]
    attrs_offset = header_size + len(body)
    sections = b""
    shnum = 0
    if arm_attrs is not None:
        shnum = 2
        null = b"\0" * sh_size
        attr = struct.pack(e + "IIIIIIIIII", 0, 0x70000003, 0, 0, attrs_offset, len(arm_attrs), 0, 0, 1, 0)
        sections = null + attr
        body += arm_attrs
    shoff = header_size + len(body) if shnum else 0
    if bits == 64:
        rest = struct.pack(e + "HHIQQQIHHHHHH", 2, machine, 1, 0, header_size if phnum else 0, shoff, 0,
                           header_size, ph_size, phnum, sh_size, shnum, 0)
    else:
        rest = struct.pack(e + "HHIIIIIHHHHHH", 2, machine, 1, 0, header_size if phnum else 0, shoff, 0,
                           header_size, ph_size, phnum, sh_size, shnum, 0)
    return ident + rest + body + sections


def aeabi(cpu_arch: int, vfp_args: int | None = None) -> bytes:
    attributes = bytes([5]) + b"ARM1176JZF-S\0" + bytes([6, cpu_arch])  # CPU_name (string), CPU_arch
    if vfp_args is not None:
        attributes += bytes([28, vfp_args])
    file_sub = bytes([1]) + struct.pack("<I", 5 + len(attributes)) + attributes
    vendor = struct.pack("<I", 4 + 6 + len(file_sub)) + b"aeabi\0" + file_sub
    return b"A" + vendor


@pytest.mark.parametrize(
    ("binary", "platform", "problem"),
    [
        (elf(62), "linux/amd64", None),
        (elf(183), "linux/amd64", "it is ELF 64-bit LSB arm64, static, not a amd64 binary"),
        (elf(183, interp=True), "linux/arm64", None),
        (elf(22, little=False), "linux/s390x", None),
        (elf(21, little=False), "linux/ppc64le", "it is ELF 64-bit MSB ppc64, static, not a ppc64le binary"),
        (elf(3, bits=32), "linux/386", None),
        (elf(62), "linux/386", "not a 386 binary"),
        (elf(40, bits=32, arm_attrs=aeabi(4)), "linux/arm/v5", None),  # armel busybox: v5TE
        (elf(40, bits=32, arm_attrs=aeabi(6)), "linux/arm/v5", "ARMv6, which an arm/v5 CPU cannot run"),
        (elf(40, bits=32, arm_attrs=aeabi(7)), "linux/arm/v6", None),  # v6KZ: the Pi 1
        (elf(40, bits=32, arm_attrs=aeabi(10, 1)), "linux/arm/v6", "ARMv7, which an arm/v6 CPU cannot run"),
        (elf(40, bits=32, arm_attrs=aeabi(8)), "linux/arm/v6", "ARMv6T2, which an arm/v6 CPU cannot run"),
        (elf(40, bits=32, arm_attrs=aeabi(10, 1)), "linux/arm/v7", None),
        (elf(40, bits=32), "linux/arm/v6", None),  # no attributes: nothing more to tell
    ],
)
def test_binaries_are_judged_against_the_platform(binary: bytes, platform: str, problem: str | None) -> None:
    info = parse_elf(binary)
    assert info is not None
    found = check_binary(info, parse(platform))
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_elf_description_names_arm_level_and_float_abi() -> None:
    assert parse_elf(elf(40, bits=32, arm_attrs=aeabi(10, 1), interp=True)).describe() == (
        "ELF 32-bit LSB arm, ARMv7, hard-float, dynamic")
    assert parse_elf(b"#!/bin/sh\necho hi\n" + b"\0" * 64) is None


@pytest.mark.parametrize(
    ("config", "what", "candidates"),
    [
        ({"config": {"Entrypoint": ["/app/run"], "Cmd": ["--x"]}}, "entrypoint /app/run", ["app/run"]),
        ({"config": {"Cmd": ["sh", "-c", "x"], "Env": ["PATH=/usr/bin:/bin"]}}, "cmd sh", ["usr/bin/sh", "bin/sh"]),
        ({"config": {"Cmd": ["./serve"], "WorkingDir": "/srv"}}, "cmd ./serve", ["srv/serve"]),
        ({"config": {}}, "", []),
    ],
)
def test_the_executable_comes_from_entrypoint_then_cmd_on_the_image_path(config, what, candidates) -> None:
    assert executable_candidates(config) == (what, candidates)


# -- layers -----------------------------------------------------------------


class CountingStream(io.BytesIO):
    """A blob download that records how far it was read."""

    def __init__(self, data: bytes, log: dict[str, int], digest: str) -> None:
        super().__init__(data)
        self.log, self.digest = log, digest

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        chunk = super().read(size)
        self.log[self.digest] = self.log.get(self.digest, 0) + len(chunk)
        return chunk


def layer(entries: list[tuple[str, str, bytes]]) -> bytes:
    """A gzip tar layer from (name, kind, data-or-linkname) entries."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
            else:
                info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
                info.linkname = data.decode()
                archive.addfile(info)
    return gzip.compress(raw.getvalue(), compresslevel=1)


def store(*layers: bytes) -> tuple[list[dict], dict[str, bytes]]:
    blobs = {f"sha256:{i:064x}": data for i, data in enumerate(layers)}
    return ([{"digest": d, "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": len(b)}
             for d, b in blobs.items()], blobs)


def test_symlinks_are_followed_across_layers_and_whiteouts_hide_lower_files() -> None:
    layers, blobs = store(
        layer([("bin/busybox", "file", b"lower"), ("bin/old", "file", b"old")]),
        layer([("bin/sh", "symlink", b"/bin/busybox"), ("bin/.wh.old", "file", b"")]),
    )
    log: dict[str, int] = {}
    opener = lambda d: CountingStream(blobs[d], log, d)  # noqa: E731
    chain, hit = follow(_Layers(layers, [], opener), {"bin/sh"}.__contains__)
    assert (chain, hit.data) == (["bin/sh", "bin/busybox"], b"lower")
    assert follow(_Layers(layers, [], opener), {"bin/old"}.__contains__) is None


def test_whiteouts_and_dot_files_at_the_root_are_read_as_named() -> None:
    layers, blobs = store(
        layer([("./app", "file", b"old"), ("./.profile", "file", b"dot")]),
        layer([("./.wh.app", "file", b"")]),
    )
    opener = lambda d: io.BytesIO(blobs[d])  # noqa: E731
    assert follow(_Layers(layers, [], opener), {"app"}.__contains__) is None
    assert follow(_Layers(layers, [], opener), {".profile"}.__contains__)[1].data == b"dot"


def test_a_layer_is_read_to_its_end_once_then_only_until_the_file() -> None:
    """As docker pull reads it: the whole layer once (so a truncated one is caught), its
    uncompressed bytes against the config's diff_id; a second look stops at the file."""
    import gzip
    import hashlib
    import os

    filler = os.urandom(8 * 1024 * 1024)  # incompressible, after the file we want
    layers, blobs = store(layer([("bin/app", "file", elf(62)), ("data/blob", "file", filler)]))
    only = layers[0]["digest"]
    diff_id = "sha256:" + hashlib.sha256(gzip.decompress(blobs[only])).hexdigest()
    log: dict[str, int] = {}
    read = _Layers(layers, [diff_id], lambda d: CountingStream(blobs[d], log, d))
    chain, hit = follow(read, {"bin/app"}.__contains__)
    assert chain == ["bin/app"] and parse_elf(hit.data).architecture == "amd64"
    assert log[only] == len(blobs[only])  # read whole, once
    log.clear()
    follow(read, {"bin/app"}.__contains__)
    assert log[only] < len(blobs[only]) / 4, (log[only], len(blobs[only]))


def test_layers_docker_pull_refuses_are_refused() -> None:
    """Truncated gzip, random bytes, zstd labelled gzip: unreadable; bytes that unpack to
    something else than the config says: corrupt. zstd and plain tar layers are read."""
    import gzip
    import hashlib
    import os

    import zstandard

    from orchestrator.image.layers import CorruptLayer, UnreadableLayer

    tar = gzip.decompress(layer([("bin/app", "file", elf(62))]))
    cases = {
        "truncated gzip": (gzip.compress(tar)[:-40], "tar+gzip", UnreadableLayer),
        "random bytes": (os.urandom(4096), "tar+gzip", UnreadableLayer),
        "zstd labelled gzip": (zstandard.ZstdCompressor().compress(tar), "tar+gzip", UnreadableLayer),
        "another layer's bytes": (gzip.compress(tar + b"\0" * 1024), "tar+gzip", CorruptLayer),
    }
    for name, (blob, kind, error) in cases.items():
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        layers = [{"digest": digest, "mediaType": f"application/vnd.oci.image.layer.v1.{kind}", "size": len(blob)}]
        with pytest.raises(error):
            follow(_Layers(layers, ["sha256:" + hashlib.sha256(tar).hexdigest()], lambda d, b=blob: io.BytesIO(b)),
                   {"bin/app"}.__contains__)
        assert name  # each case raised
    for blob, kind in ((zstandard.ZstdCompressor().compress(tar), "tar+zstd"), (tar, "tar")):
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        layers = [{"digest": digest, "mediaType": f"application/vnd.oci.image.layer.v1.{kind}", "size": len(blob)}]
        chain, hit = follow(_Layers(layers, ["sha256:" + hashlib.sha256(tar).hexdigest()],
                                    lambda d, b=blob: io.BytesIO(b)), {"bin/app"}.__contains__)
        assert chain == ["bin/app"] and parse_elf(hit.data).architecture == "amd64"


# -- credentials ------------------------------------------------------------


def test_credentials_come_from_docker_config_and_are_never_shown(tmp_path: Path) -> None:
    import base64

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {"reg.example:5000": {"auth": base64.b64encode(b"ci:hunter2").decode()}}}))
    creds = credentials_for("reg.example:5000", config)
    assert creds == Credentials("ci", "hunter2")
    assert "hunter2" not in repr(creds) and "hunter2" not in str(creds)
    assert credentials_for("other.example", config) is None


# -- the real registry ------------------------------------------------------


@pytest.mark.engine
def test_deep_passes_a_good_index_and_names_each_binary(registry, busybox_context) -> None:
    platforms = ["linux/amd64", "linux/arm64", "linux/arm/v6", "linux/arm/v7", "linux/s390x"]
    ctx = busybox_context("good", platforms=platforms)
    ref = registry.ref("deep/good", "1")
    buildx_push(ctx, ",".join(platforms), f"type=registry,name={ref}")
    result = orch("verify", ref, "--platform", ",".join(platforms), "--deep", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    binary = {f["platform"]: f["message"] for f in json.loads(result.stdout)["findings"] if f["check"] == "binary"}
    assert set(binary) == set(platforms)
    assert "/bin/sh -> /bin/busybox is ELF 64-bit MSB s390x" in binary["linux/s390x"]
    assert "ARMv5TE" in binary["linux/arm/v6"]


@pytest.mark.engine
def test_deep_fails_an_amd64_image_whose_binary_is_aarch64(registry, busybox_context) -> None:
    ctx = busybox_context("liar", platforms=["linux/amd64"], binary_for={"linux/amd64": "linux/arm64"})
    ref = registry.ref("deep/liar", "1")
    buildx_push(ctx, "linux/amd64", f"type=registry,name={ref}")
    shallow = orch("verify", ref, "--platform", "linux/amd64")
    assert shallow.returncode == 0, shallow.stdout  # the config says amd64, as the descriptor does
    deep = orch("verify", ref, "--platform", "linux/amd64", "--deep")
    assert deep.returncode == 1, deep.stdout + deep.stderr
    assert "FAIL  binary       linux/amd64" in deep.stdout
    assert "ELF 64-bit LSB arm64, static, not a amd64 binary" in deep.stdout
    assert "rebuild this platform's image" in deep.stdout


@pytest.mark.engine
def test_deep_fails_an_arm_v6_entry_holding_an_armv7_binary(registry, busybox_context) -> None:
    ctx = busybox_context("v7inv6", platforms=["linux/arm/v6"], binary_for={"linux/arm/v6": "linux/arm/v7"})
    ref = registry.ref("deep/v7inv6", "1")
    buildx_push(ctx, "linux/arm/v6", f"type=registry,name={ref}")
    deep = orch("verify", ref, "--platform", "linux/arm/v6", "--deep")
    assert deep.returncode == 1, deep.stdout + deep.stderr
    assert "built for ARMv7, which an arm/v6 CPU cannot run" in deep.stdout


def _htpasswd(path: Path, user: str, password: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # bcrypt through libxcrypt; distribution's htpasswd accepts only bcrypt

        path.write_text(f"{user}:{crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))}\n")


@pytest.mark.engine
def test_deep_verify_on_a_registry_that_needs_login(tmp_path: Path, busybox_context, monkeypatch) -> None:
    password = "orch-Secret-9f3b"
    _htpasswd(tmp_path / "htpasswd", "ci", password)
    secured = start_registry(tmp_path, htpasswd=tmp_path / "htpasswd")
    try:
        logged_in, logged_out = tmp_path / "docker-in", tmp_path / "docker-out"
        logged_in.mkdir()
        logged_out.mkdir()
        # buildx must still find its plugin and builders with another DOCKER_CONFIG.
        for config_dir in (logged_in, logged_out):
            docker_config_dir(config_dir)
        monkeypatch.setenv("DOCKER_CONFIG", str(logged_in))
        login = subprocess.run(["docker", "login", secured.host, "-u", "ci", "--password-stdin"], input=password,
                               capture_output=True, text=True, timeout=60)
        assert login.returncode == 0, login.stderr
        ctx = busybox_context("auth", platforms=["linux/amd64", "linux/arm64"])
        ref = secured.ref("private/app", "1")
        buildx_push(ctx, "linux/amd64,linux/arm64", f"type=registry,name={ref}")

        ok = orch("verify", ref, "--platform", "linux/amd64,linux/arm64", "--deep")
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert ok.stdout.count("ok    binary") == 2

        denied = orch("verify", ref, "--platform", "linux/amd64", "--deep", env={"DOCKER_CONFIG": str(logged_out)})
        assert denied.returncode == 3, denied.stdout + denied.stderr
        assert f"docker login {secured.host}" in denied.stderr
        for output in (ok.stdout, ok.stderr, denied.stdout, denied.stderr):
            assert password not in output
    finally:
        secured.stop()


@pytest.mark.engine
def test_busybox_binaries_from_debian_are_what_their_platform_needs(busybox_binaries) -> None:
    for platform, deb in BUSYBOX_FOR_PLATFORM.items():
        info = parse_elf(busybox_binaries[platform].read_bytes())
        assert info is not None, deb
        assert check_binary(info, parse(platform)) is None, (platform, info.describe())


# -- local OCI layouts --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path", "tag"),
    [
        ("oci-layout:///srv/out", "/srv/out", None),
        ("oci-layout:///srv/out:1.2", "/srv/out", "1.2"),
        ("oci-layout://rel/dir:latest", "rel/dir", "latest"),
    ],
)
def test_layout_references_split_into_directory_and_tag(text: str, path: str, tag: str | None) -> None:
    from orchestrator.registry.layout import split_layout_ref

    assert split_layout_ref(text) == (Path(path), tag)


def test_a_directory_that_is_not_a_layout_is_bad_input(tmp_path: Path) -> None:
    result = orch("inspect", f"oci-layout://{tmp_path}")
    assert result.returncode == 2, result.stderr
    assert f'"{tmp_path}" is not an OCI image layout (no index.json)' in result.stderr


@pytest.mark.engine
@pytest.mark.usefixtures("daemons_own_builder")  # one layout of every platform: one call
def test_build_into_an_oci_layout_then_inspect_and_deep_verify_it(tmp_path: Path) -> None:
    from .conftest import REPO
    from .test_build import BASE_ARG

    layout = tmp_path / "out"
    platforms = "linux/arm64,linux/arm/v6,linux/s390x"
    built = orch("build", str(REPO), "-f", str(REPO / "Dockerfile.example"), "--platform", platforms,
                 "--build-arg", BASE_ARG, "-t", "demo:1", "--oci-layout", str(layout), "--json")
    assert built.returncode == 0, built.stderr[-2000:]
    assert json.loads(built.stdout)["local_image"] == f"oci-layout://{layout}"
    shown = json.loads(orch("inspect", f"oci-layout://{layout}", "--json").stdout)
    assert [e["platform"] for e in shown["entries"]] == ["linux/arm64", "linux/arm/v6", "linux/s390x"]
    assert len(shown["attestations"]) == 3
    verified = orch("verify", f"oci-layout://{layout}:1", "--platform", platforms, "--deep")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "ELF 64-bit MSB s390x" in verified.stdout


def test_oci_layout_and_push_together_are_bad_input() -> None:
    result = orch("build", "--platform", "linux/arm64", "-f", "Dockerfile.example", "-t", "localhost:5000/x/y:1",
                  "--push", "--oci-layout", "/tmp/x", "--dry-run")
    assert result.returncode == 2, result.stderr
    assert "--oci-layout and --push" in result.stderr


@pytest.mark.engine
def test_a_broken_layer_fails_deep_strict_and_is_a_warning_without_strict(registry) -> None:
    """An image whose layer is truncated gzip, in a real registry: docker pull fails on it, so
    --deep --strict fails; --deep alone warns (the user asked for no more)."""
    import hashlib

    from .registry_api import put_manifest, upload_blob

    whole = layer([("bin/app", "file", elf(62))])
    broken = whole[:-40]
    diff_id = "sha256:" + hashlib.sha256(gzip.decompress(whole)).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/app"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": upload_blob(registry.port, "deep/broken", config), "size": len(config)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": upload_blob(registry.port, "deep/broken", broken), "size": len(broken)}]}
    put_manifest(registry.port, "deep/broken", "1", manifest)
    ref = registry.ref("deep/broken", "1")
    strict = orch("verify", ref, "--platform", "linux/amd64", "--deep", "--strict")
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert "cannot read the layers" in strict.stdout and "cannot be unpacked" in strict.stdout
    lenient = orch("verify", ref, "--platform", "linux/amd64", "--deep")
    assert lenient.returncode == 0 and "cannot read the layers" in lenient.stdout, lenient.stdout
