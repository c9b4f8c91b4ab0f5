import pytest

from orchestrator.redact import MASK, redact, redact_command


@pytest.mark.parametrize(
    "text, secret",
    [
        ("pushing to https://alice:s3cr3t-pw@registry.example.com/v2/", "s3cr3t-pw"),
        ("--build-arg GITHUB_TOKEN=ghp_abcdef123456", "ghp_abcdef123456"),
        ("password=hunter2hunter2 rest", "hunter2hunter2"),
        ('{"password": "hunter2hunter2"}', "hunter2hunter2"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload", "eyJhbGciOiJIUzI1NiJ9.payload"),
        ("REGISTRY_API_KEY=abc123def456", "abc123def456"),
    ],
)
def test_redact_masks_credentials_in_text(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out
    assert MASK in out


@pytest.mark.parametrize(
    "text",
    ["linux/arm/v7 built in 3.2s", "localhost:5000/orch/demo:latest", "sha256:0123abcd"],
)
def test_redact_leaves_ordinary_text_alone(text: str) -> None:
    assert redact(text) == text


def test_redact_masks_known_secret_values_anywhere() -> None:
    assert redact("error: value plainsecretvalue rejected", ("plainsecretvalue",)) == f"error: value {MASK} rejected"


def test_redact_command_masks_password_flags() -> None:
    args = ["docker", "login", "-u", "bob", "--password", "pw123", "--password=pw456", "reg"]
    out = redact_command(args)
    assert "pw123" not in out and "--password=pw456" not in out
    assert out[:4] == ["docker", "login", "-u", "bob"] and out[-1] == "reg"


@pytest.fixture
def kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """The values kept for the process, reset after the test (they are process-wide)."""
    import orchestrator.redact

    monkeypatch.setattr(orchestrator.redact, "_known", ())


def test_kept_secret_values_are_masked_in_text_documents_and_each_line(kept: None) -> None:
    from orchestrator.redact import keep_secret, mask, mask_document

    keep_secret("s3cr3t-token-value", "-----BEGIN KEY-----\nAAAAline2AAAA\n-----END KEY-----\n", "ab", "")
    assert mask("#7 0.4 s3cr3t-token-value") == f"#7 0.4 {MASK}"
    assert mask("#7 0.4 AAAAline2AAAA") == f"#7 0.4 {MASK}"  # a step prints a file line by line
    assert mask("ab cd") == "ab cd"  # too short to be worth masking: every line would be garbled
    assert redact("x s3cr3t-token-value") == f"x {MASK}"
    assert mask_document({"error": ["at RUN echo s3cr3t-token-value"], "n": 1}) == {"error": [f"at RUN echo {MASK}"],
                                                                                    "n": 1}


def test_a_builds_secret_values_are_kept_from_build_args_and_secrets(kept: None, tmp_path, monkeypatch) -> None:
    from orchestrator.builds.options import TagOptions
    from orchestrator.builds.request import BuildRequest, plan_build
    from orchestrator.redact import known

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "tok").write_text("file-secret-value\n")
    monkeypatch.setenv("MY_TOKEN_VAR", "env-secret-value")
    plan_build(BuildRequest(context=str(tmp_path), platforms=("linux/amd64",), tags=TagOptions(("localhost:5000/a/b:1",)),
                            build_args=("NPM_TOKEN=arg-secret-value", "VERSION=1.2.3"),
                            secrets=(f"id=tok,src={tmp_path / 'tok'}", "id=t2,env=MY_TOKEN_VAR"),
                            extra_args=("--build-arg", "API_KEY=passed-secret-value")))
    assert set(known()) >= {"arg-secret-value", "file-secret-value", "env-secret-value", "passed-secret-value"}
    assert "1.2.3" not in known()
