"""docker-compose.yml and the Dockerfile agree with the gateway: compose names only settings the
gateway reads, with values it accepts; what compose builds has a Dockerfile; the image runs
`gateway serve` from the installed package as a user that is not root.

Read as files (PyYAML for compose, a few lines for the Dockerfile): there is no Docker engine
in the test environment, and building an image would take minutes."""

from __future__ import annotations

import fnmatch
import json
import shlex
from pathlib import Path
from typing import Any

import yaml

from gateway.cli import _parser
from gateway.settings import Settings, settings_table

ROOT = Path(__file__).resolve().parents[1]
KNOWN = {row.variable for row in settings_table()}


def _compose() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(document, dict)
    return document


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment, written as a mapping or as a list of NAME=value."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        return dict(str(item).partition("=")[::2] for item in raw)
    return {str(name): "" if value is None else str(value) for name, value in raw.items()}


def _dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order: comments dropped, continued lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, arguments = pending.strip().partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def _env_names(arguments: str) -> list[str]:
    words = shlex.split(arguments)
    if words and "=" not in words[0]:
        return [words[0]]  # the old `ENV NAME value` form
    return [word.partition("=")[0] for word in words]


def _gateway_command(argv: list[str]) -> None:
    """The command line is one the gateway accepts (argparse exits on anything else)."""
    assert argv[:2] == ["gateway", "serve"], argv
    _parser().parse_args(argv[1:])


def test_compose_names_only_settings_the_gateway_reads_with_values_it_accepts() -> None:
    named = 0
    for name, service in _compose()["services"].items():
        environment = _environment(service)
        gateway = {k: v for k, v in environment.items() if k.startswith("GATEWAY_")}
        assert set(gateway) <= KNOWN, (name, sorted(set(gateway) - KNOWN))
        if not gateway:
            continue
        named += len(gateway)
        Settings.from_env({"HOME": "/nonexistent", **gateway})  # SettingError if not accepted
        _gateway_command(service["command"])
        if "GATEWAY_KEYS_DIR" in gateway:
            # The keys must outlive the container and be the same for every instance.
            targets = {str(volume).split(":")[1] for volume in service.get("volumes", [])}
            assert gateway["GATEWAY_KEYS_DIR"] in targets, (name, targets)
    assert named > 0  # so the test cannot pass on a file that names nothing


def test_every_service_compose_builds_has_a_dockerfile() -> None:
    built = 0
    for name, service in _compose()["services"].items():
        build = service.get("build")
        if build is None:
            continue
        context = build if isinstance(build, str) else build.get("context", ".")
        dockerfile = (
            "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        )
        assert (ROOT / context / dockerfile).is_file(), (name, context, dockerfile)
        built += 1
    assert built > 0


def test_the_image_installs_the_package_and_serves_as_a_user_that_is_not_root() -> None:
    instructions = _dockerfile(ROOT / "Dockerfile")
    keywords = [keyword for keyword, _ in instructions]
    assert instructions[0] == ("FROM", "python:3.11-slim")

    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users, "the image must not run as root"
    user, _, group = users[-1].partition(":")
    assert user not in ("root", "0") and group not in ("root", "0"), users[-1]
    assert keywords.index("CMD") > len(keywords) - 1 - keywords[::-1].index("USER")

    assert any(k == "RUN" and "pip install ." in args for k, args in instructions)
    (command,) = [json.loads(args) for keyword, args in instructions if keyword == "CMD"]
    _gateway_command(command)

    for keyword, arguments in instructions:
        if keyword == "ENV":
            names = _env_names(arguments)
            assert {n for n in names if n.startswith("GATEWAY_")} <= KNOWN, names


def test_the_image_copies_only_what_exists_and_is_not_ignored() -> None:
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    instructions = _dockerfile(ROOT / "Dockerfile")
    sources = [s for k, args in instructions if k == "COPY" for s in args.split()[:-1]]
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source
    # gateway/policies/*.toml link to policies/: the wheel is built with what they point at.
    assert {"pyproject.toml", "gateway", "policies"} <= set(sources), sources
