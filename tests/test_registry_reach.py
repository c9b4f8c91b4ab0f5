"""Registries beyond loopback, reached the way docker reaches them: through HTTP(S)_PROXY (unless
NO_PROXY), with a private CA and a client certificate from certs.d, and in plain HTTP only when
the daemon lists the registry as insecure. The engine tests run a real registry over TLS (a
self-signed CA made here with openssl) behind a forward proxy on loopback that alone knows the
registry's name."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.registry.reach import Proxy, insecure_in, proxy_for

from . import orch_processes
from .conftest import Registry, free_port
from .forward_proxy import ForwardProxy
from .registry_api import TLS_CONTEXTS, push_image
from .waiting import wait_until

NAME = "registry.orch.test"  # resolves nowhere but in the proxy
INSECURE_ADDRESS = "192.0.2.10"  # TEST-NET-1: in the second node's insecure-registries (scripts/engine-node.sh)


@pytest.mark.parametrize(
    ("scheme", "netloc", "environ", "expected"),
    [
        ("https", "ghcr.io", {"HTTPS_PROXY": "http://proxy:3128"}, "proxy:3128"),
        ("https", "ghcr.io", {"https_proxy": "proxy:3128"}, "proxy:3128"),  # lower case, no scheme
        ("http", "reg.corp:5000", {"HTTPS_PROXY": "http://p:1"}, None),  # http uses HTTP_PROXY
        ("http", "reg.corp:5000", {"HTTP_PROXY": "http://p:1"}, "p:1"),
        ("https", "localhost:5000", {"HTTPS_PROXY": "http://p:1"}, None),  # loopback never goes through a proxy
        ("https", "127.0.0.5:443", {"HTTPS_PROXY": "http://p:1"}, None),
        ("https", "[::1]:5000", {"HTTPS_PROXY": "http://p:1"}, None),
        ("https", "[::2]:5000", {"HTTPS_PROXY": "http://p:1"}, "p:1"),
        ("https", "127.example:5000", {"HTTPS_PROXY": "http://p:1"}, "p:1"),  # a name that starts like an address
        ("https", "ghcr.io", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "*"}, None),
        ("https", "ghcr.io", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "ghcr.io"}, None),
        ("https", "pkg.ghcr.io", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "ghcr.io"}, None),  # and subdomains
        ("https", "ghcr.io", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": ".ghcr.io"}, "p:1"),  # subdomains only
        ("https", "a.ghcr.io", {"HTTPS_PROXY": "http://p:1", "no_proxy": "*.ghcr.io"}, None),
        ("https", "reg.corp:5000", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "reg.corp:443"}, "p:1"),  # other port
        ("https", "reg.corp:5000", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "x, reg.corp:5000"}, None),
        ("https", "10.1.2.3:5000", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "10.0.0.0/8"}, None),
        ("https", "11.1.2.3:5000", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "10.0.0.0/8"}, "p:1"),
    ],
)
def test_which_proxy_a_registry_is_reached_through(scheme: str, netloc: str, environ: dict, expected) -> None:
    found = proxy_for(scheme, netloc, environ)
    assert (str(found) if found else None) == expected


def test_proxy_credentials_become_a_header_and_stay_out_of_sight() -> None:
    found = proxy_for("https", "ghcr.io", {"HTTPS_PROXY": "http://ci:s%40cret@proxy:3128"})
    assert found == Proxy("proxy", 3128, "Basic Y2k6c0BjcmV0")  # ci:s@cret
    assert "s@cret" not in repr(found) and "Y2k6" not in repr(found) and "Y2k6" not in str(found)


@pytest.mark.parametrize(
    ("config", "netloc", "insecure"),
    [  # docker info's RegistryConfig, as the daemon reports insecure-registries
        ({"InsecureRegistryCIDRs": ["127.0.0.0/8"]}, "127.0.0.1:5000", True),
        ({"InsecureRegistryCIDRs": ["127.0.0.0/8"]}, "192.0.2.10:5000", False),
        ({"InsecureRegistryCIDRs": ["127.0.0.0/8", "192.0.2.0/24"]}, "192.0.2.10:5000", True),
        ({"IndexConfigs": {"reg.corp:5000": {"Name": "reg.corp:5000", "Secure": False}}}, "reg.corp:5000", True),
        ({"IndexConfigs": {"docker.io": {"Name": "docker.io", "Secure": True}}}, "docker.io", False),
        ({}, "reg.corp:5000", False),
    ],
)
def test_insecure_registries_are_what_the_daemon_reports(config: dict, netloc: str, insecure: bool) -> None:
    assert insecure_in(config, netloc) is insecure


# -- against real registries ------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(where: Path) -> Path:
    """A CA, a server certificate for NAME and a client certificate, with openssl."""
    where.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=orch test CA",
             cwd=where)
    for name, subject, extension in (("server", f"/CN={NAME}", f"subjectAltName=DNS:{NAME},DNS:localhost"),
                                     ("client", "/CN=orch test client", "extendedKeyUsage=clientAuth")):
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=where)
        (where / f"{name}.ext").write_text(extension + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext", cwd=where)
    return where


def start_tls_registry(workdir: Path, pki: Path) -> Registry:
    port = free_port()
    root = workdir / f"tls-registry-{port}"
    root.mkdir(parents=True)
    (root / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  tls:\n    certificate: {pki / 'server.crt'}\n"
        f"    key: {pki / 'server.key'}\n    clientcas: [{pki / 'ca.crt'}]\n")
    log = open(root / "registry.log", "wb")  # closed with the process
    process = subprocess.Popen(["docker-registry", "serve", str(root / "config.yml")], stdout=log, stderr=log)
    import ssl

    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.check_hostname = False  # reached by address here; orch checks the name through the proxy
    context.load_cert_chain(str(pki / "client.crt"), str(pki / "client.key"))
    base = f"https://127.0.0.1:{port}"
    TLS_CONTEXTS[base] = context
    def answers() -> bool:
        try:
            with context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=1)):
                return True
        except OSError:
            return process.poll() is not None  # exited: stop waiting, the test shows its log

    wait_until(answers, f"the TLS registry on port {port}")
    return Registry(host=f"{NAME}:{port}", port=port, root=root, process=process)


@pytest.fixture
def tls_registry(tmp_path: Path, engine_ready: None) -> Iterator[tuple[Registry, Path]]:
    pki = make_pki(tmp_path / "pki")
    registry = start_tls_registry(tmp_path, pki)
    yield registry, pki
    registry.stop()


def orch_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("https_proxy", "http_proxy", "no_proxy")}
    return {**env, **extra}


def run_orch(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    import sys

    from .conftest import REPO

    return orch_processes.run([sys.executable, "-m", "orchestrator", *args], cwd=REPO, env=env, timeout=120)


def certs_d(tmp_path: Path, netloc: str, pki: Path, *, client: bool = True) -> Path:
    """docker's layout: certs.d/HOST:PORT/ca.crt, client.cert, client.key."""
    folder = tmp_path / "certs.d" / netloc
    folder.mkdir(parents=True)
    (folder / "ca.crt").write_bytes((pki / "ca.crt").read_bytes())
    if client:
        (folder / "client.cert").write_bytes((pki / "client.crt").read_bytes())
        (folder / "client.key").write_bytes((pki / "client.key").read_bytes())
    return tmp_path / "certs.d"


@pytest.mark.engine
def test_a_tls_registry_behind_a_proxy_with_a_private_ca_and_a_client_certificate(tls_registry, tmp_path) -> None:
    registry, pki = tls_registry
    push_image(f"https://127.0.0.1:{registry.port}", "team/app", "1", {"os": "linux", "architecture": "arm64"})
    proxy = ForwardProxy({NAME: "127.0.0.1"}, authorization="Basic Y2k6cHJveHktcGFzcw==")  # ci:proxy-pass
    try:
        env = orch_env(HTTPS_PROXY=f"http://ci:proxy-pass@127.0.0.1:{proxy.port}",
                       ORCH_CERTS_D=str(certs_d(tmp_path, registry.host, pki)))
        result = run_orch("verify", registry.ref("team/app", "1"), "--platform", "linux/arm64", env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert ("CONNECT", registry.host) in proxy.asked  # the name resolves only in the proxy
        assert "proxy-pass" not in result.stdout + result.stderr

        # Without the CA, TLS fails, with docker's remedy named.
        bare = orch_env(HTTPS_PROXY=f"http://ci:proxy-pass@127.0.0.1:{proxy.port}",
                        ORCH_CERTS_D=str(tmp_path / "nothing"))
        untrusted = run_orch("verify", registry.ref("team/app", "1"), "--platform", "linux/arm64", env=bare)
        assert untrusted.returncode == 3, untrusted.stdout + untrusted.stderr
        assert f"cannot talk TLS with the registry {registry.host}" in untrusted.stderr
        assert "not signed by a CA orch trusts" in untrusted.stderr
        assert f"nothing/{registry.host}/ca.crt" in untrusted.stderr and "Traceback" not in untrusted.stderr

        # With the CA but no client certificate, the registry refuses the handshake.
        no_client = orch_env(HTTPS_PROXY=f"http://ci:proxy-pass@127.0.0.1:{proxy.port}",
                             ORCH_CERTS_D=str(certs_d(tmp_path / "ca-only", registry.host, pki, client=False)))
        refused = run_orch("verify", registry.ref("team/app", "1"), "--platform", "linux/arm64", env=no_client)
        assert refused.returncode == 3, refused.stdout + refused.stderr
        assert "the registry asks for a client certificate" in refused.stderr and "Traceback" not in refused.stderr

        # NO_PROXY names the registry: orch goes direct, and the name resolves nowhere.
        direct = run_orch("verify", registry.ref("team/app", "1"), "--platform", "linux/arm64",
                          env={**env, "NO_PROXY": NAME})
        assert direct.returncode == 3 and f"cannot reach the registry {registry.host}" in direct.stderr
    finally:
        proxy.stop()


@pytest.mark.engine
def test_a_registry_the_daemon_lists_as_insecure_is_spoken_to_in_plain_http(registry: Registry, second_node: str,
                                                                          tmp_path: Path) -> None:
    push_image(registry.port, "team/app", "1", {"os": "linux", "architecture": "amd64"})
    proxy = ForwardProxy({INSECURE_ADDRESS: "127.0.0.1"})
    ref = f"{INSECURE_ADDRESS}:{registry.port}/team/app:1"
    try:
        env = orch_env(HTTPS_PROXY=proxy.url, HTTP_PROXY=proxy.url, ORCH_CERTS_D=str(tmp_path / "none"))
        # This machine's main daemon knows only 127.0.0.0/8: TLS is required and fails.
        refused = run_orch("verify", ref, "--platform", "linux/amd64", env=env)
        assert refused.returncode == 3, refused.stdout + refused.stderr
        assert "(it does not speak TLS)" in refused.stderr and "insecure-registries" in refused.stderr
        # The second node lists 192.0.2.0/24: orch tries TLS, then plain HTTP, as docker does.
        info = json.loads(subprocess.run(["docker", "--context", second_node, "info", "--format",
                                          "{{json .RegistryConfig}}"], capture_output=True, text=True,
                                         timeout=30).stdout)
        assert "192.0.2.0/24" in info["InsecureRegistryCIDRs"]
        allowed = run_orch("verify", ref, "--platform", "linux/amd64", env={**env, "DOCKER_CONTEXT": second_node})
        assert allowed.returncode == 0, allowed.stdout + allowed.stderr
        assert ("CONNECT", f"{INSECURE_ADDRESS}:{registry.port}") in proxy.asked
        assert any(method == "GET" and target.startswith(f"http://{INSECURE_ADDRESS}:{registry.port}/v2/")
                   for method, target in proxy.asked), proxy.asked
    finally:
        proxy.stop()


@pytest.mark.engine
def test_doctor_reaches_a_registry_as_the_daemon_it_checks_would(registry: Registry, second_node: str,
                                                                 tmp_path: Path) -> None:
    """`orch doctor --context NODE`: the registry check goes by NODE's insecure-registries (from the
    one `docker info` doctor asks), not by the current context's."""
    proxy = ForwardProxy({INSECURE_ADDRESS: "127.0.0.1"})
    try:
        env = orch_env(HTTPS_PROXY=proxy.url, HTTP_PROXY=proxy.url, ORCH_CERTS_D=str(tmp_path / "none"))
        address = f"{INSECURE_ADDRESS}:{registry.port}"
        checks = {}
        for context in ("default", second_node):
            result = run_orch("doctor", "--context", context, "--registry", address, "--json", env=env)
            checks[context] = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
        assert checks["default"]["registry"]["status"] == "fail"  # TLS required, and it does not speak TLS
        assert checks[second_node]["registry"]["status"] == "ok", checks[second_node]["registry"]
        assert checks[second_node]["registry"]["details"]["url"] == f"http://{address}/v2/"
        assert "192.0.2.0/24" not in checks["default"]["docker daemon"]["details"]["insecure_registries"]
        assert "192.0.2.0/24" in checks[second_node]["docker daemon"]["details"]["insecure_registries"]
    finally:
        proxy.stop()


@pytest.mark.engine
def test_a_registry_on_loopback_is_tried_in_tls_first_and_the_answer_kept(tmp_path, engine_ready) -> None:
    """An SSH tunnel to a TLS registry looks like localhost: orch speaks TLS to it, as docker
    does; a plain registry on loopback is spoken to in HTTP once TLS failed, and later runs go
    straight there (the decision is kept in the state directory)."""
    import json

    from .conftest import start_registry

    pki = make_pki(tmp_path / "pki")
    tls = start_tls_registry(tmp_path, pki)
    plain = start_registry(tmp_path / "plain")
    try:
        push_image(f"https://127.0.0.1:{tls.port}", "team/app", "1", {"os": "linux", "architecture": "arm64"})
        push_image(plain.port, "team/app", "1", {"os": "linux", "architecture": "arm64"})
        tunnel, local = f"localhost:{tls.port}", f"localhost:{plain.port}"
        env = orch_env(ORCH_CERTS_D=str(certs_d(tmp_path, tunnel, pki)), ORCH_STATE_HOME=str(tmp_path / "state"))
        for host in (tunnel, local, local):
            result = run_orch("verify", f"{host}/team/app:1", "--platform", "linux/arm64", env=env)
            assert result.returncode == 0, result.stdout + result.stderr
        kept = json.loads((tmp_path / "state" / "registries" / "schemes.json").read_text())
        assert kept == {tunnel: "https", local: "http"}
    finally:
        tls.stop()
        plain.stop()
