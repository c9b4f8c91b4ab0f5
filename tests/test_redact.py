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
