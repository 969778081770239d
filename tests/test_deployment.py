"""docker-compose.yml and the Dockerfile agree with the gateway: compose names only settings the
gateway reads, with values it accepts; what compose builds has a Dockerfile; the image runs
`gateway serve` from the installed package as a user that is not root.

Read as files (PyYAML for compose, a few lines for the Dockerfile): there is no Docker engine
in the test environment, and building an image would take minutes."""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from gateway.cli import _parser
from gateway.settings import Settings, settings_table

ROOT = Path(__file__).resolve().parents[1]
KNOWN = {row.variable for row in settings_table()}


# `${NAME}`, `${NAME:-default}`, `${NAME:?message}`: compose fills these from .env at start.
PLACEHOLDER = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?::(?P<op>[-?])(?P<text>[^}]*))?\}")


def _interpolated(text: str) -> str:
    """The file as compose sees it with every variable set (a value that is never a secret)."""

    def value(match: re.Match[str]) -> str:
        if match["op"] == "-":
            return match["text"]
        return "placeholder-" + match["name"].lower()

    return PLACEHOLDER.sub(value, text)


def _compose() -> dict[str, Any]:
    document = yaml.safe_load(_interpolated((ROOT / "docker-compose.yml").read_text()))
    assert isinstance(document, dict)
    return document


def _gateways() -> dict[str, dict[str, Any]]:
    """The services that run the gateway (they name GATEWAY_ settings)."""
    return {
        name: service
        for name, service in _compose()["services"].items()
        if any(k.startswith("GATEWAY_") for k in _environment(service))
    }


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


def test_the_production_shape_is_two_gateways_behind_a_proxy_with_everything_they_need() -> None:
    services = _compose()["services"]
    images = {name: str(service.get("image", "")) for name, service in services.items()}
    for what, image in {
        "postgres": "postgres:",
        "redis": "redis:",
        "livekit": "livekit/livekit-server:",
        "egress": "livekit/egress:",
        "proxy": "nginx:",
    }.items():
        assert image in images.get(what, ""), (what, images)
    gateways = _gateways()
    assert len(gateways) >= 2, sorted(gateways)
    for name, service in gateways.items():
        environment = _environment(service)
        assert environment["GATEWAY_DATABASE_URL"].startswith("postgresql://"), name
        assert environment["GATEWAY_REDIS_URL"].startswith("redis://"), name
        assert "build" in service and service["command"][:2] == ["gateway", "serve"], name


def test_every_gateway_instance_has_its_own_process_url_routed_to_it_alone() -> None:
    gateways = _gateways()
    urls = {name: _environment(s).get("GATEWAY_PROCESS_URL") for name, s in gateways.items()}
    assert None not in urls.values(), urls
    assert len(set(urls.values())) == len(urls), urls  # distinct: joins are sent to the owner
    public = {_environment(s)["GATEWAY_PUBLIC_URL"] for s in gateways.values()}
    assert len(public) == 1 and public.isdisjoint(urls.values()), (public, urls)

    nginx = (ROOT / "deploy" / "nginx" / "nginx.conf").read_text()
    servers = re.findall(
        r"server_name\s+([^;]+);\s*location / \{ proxy_pass http://([^;/]+)", nginx
    )
    routed = dict((host.strip(), target) for host, target in servers)
    for name, url in urls.items():
        assert url is not None
        host = url.split("//", 1)[1].split("/", 1)[0]
        assert routed.get(host) == f"{name}:8080", (name, host, routed)
    (upstream,) = re.findall(r"upstream gateways \{([^}]*)\}", nginx)
    assert sorted(re.findall(r"server ([\w-]+):8080", upstream)) == sorted(gateways)
    public_host = next(iter(public)).split("//", 1)[1]
    assert routed.get(public_host) == "gateways", routed


def test_the_gateways_believe_forwarded_addresses_from_the_proxy_only() -> None:
    services = _compose()["services"]
    (proxy_address,) = [
        network["ipv4_address"] for network in services["proxy"]["networks"].values()
    ]
    (subnet,) = [c["subnet"] for c in _compose()["networks"]["backend"]["ipam"]["config"]]
    assert ipaddress.ip_address(proxy_address) in ipaddress.ip_network(subnet)
    for name, service in _gateways().items():
        trusted = _environment(service)["GATEWAY_TRUSTED_PROXIES"].split(",")
        assert [ipaddress.ip_network(t) for t in trusted] == [
            ipaddress.ip_network(f"{proxy_address}/32")
        ], name
        assert "ports" not in service, f"{name} must be reached through the proxy only"


def test_livekit_signs_webhooks_with_a_key_the_gateway_accepts_and_sends_them_to_it() -> None:
    from gateway.http.livekit_webhooks_api import WEBHOOK_PATH

    livekit = yaml.safe_load((ROOT / "deploy" / "livekit" / "livekit.yaml").read_text())
    assert livekit["room"]["auto_create"] is False  # rooms only as the gateway creates them
    (url,) = livekit["webhook"]["urls"]
    assert url.startswith("http://proxy:8080") and url.endswith(WEBHOOK_PATH), url
    secrets = ROOT / "deploy" / "secrets"
    gateway_keys = json.loads((secrets / "gateway-livekit-keys.json.example").read_text())
    server_keys = yaml.safe_load((secrets / "livekit-keys.yaml.example").read_text())
    egress = yaml.safe_load((secrets / "egress.yaml.example").read_text())
    key = livekit["webhook"]["api_key"]
    assert key in gateway_keys and key in server_keys and egress["api_key"] == key
    assert gateway_keys[key]["secret"] == server_keys[key] == egress["api_secret"]
    assert "CHANGE-ME" in server_keys[key]  # a placeholder, clearly marked, never a secret

    compose = _compose()
    for name, secret in compose["secrets"].items():
        source = ROOT / secret["file"]
        assert source.parent == secrets, name
        assert source.with_name(source.name + ".example").is_file(), name
    ignored = (secrets / ".gitignore").read_text().split()
    assert ignored[:1] == ["*"] or "*" in ignored  # real secrets never enter git
    for name, service in _gateways().items():
        path = _environment(service)["GATEWAY_LIVEKIT_KEYS_FILE"]
        targets = {s["target"] for s in service.get("secrets", [])}
        assert path in targets, name
    for service in compose["services"].values():  # files mounted from the repository exist
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).is_file(), source


def test_every_gateway_instance_runs_livekit_with_the_servers_own_key_and_secret() -> None:
    """The gateway mints tokens and calls LiveKit's API with a key pair LiveKit has, the same
    one LiveKit signs webhooks with and Egress uses; its secret is a file (a compose secret
    whose example holds the same placeholder as the server's key file); every instance runs
    the same LiveKit configuration, and webhooks about its organisations are accepted."""
    livekit = yaml.safe_load((ROOT / "deploy" / "livekit" / "livekit.yaml").read_text())
    secrets = ROOT / "deploy" / "secrets"
    server_keys = yaml.safe_load((secrets / "livekit-keys.yaml.example").read_text())
    webhook_keys = json.loads((secrets / "gateway-livekit-keys.json.example").read_text())
    egress = yaml.safe_load((secrets / "egress.yaml.example").read_text())
    compose = _compose()
    gateways = _gateways()
    configured = set()
    for name, service in gateways.items():
        environment = _environment(service)
        settings = Settings.from_env({"HOME": "/nonexistent", **environment})
        assert settings.livekit_url is not None, name
        assert str(settings.livekit_url).startswith("wss://"), name  # browsers: TLS only
        key = settings.livekit_api_key
        assert key == livekit["webhook"]["api_key"] == egress["api_key"], name
        assert key in server_keys and key in webhook_keys, name

        secret_file = str(settings.livekit_api_secret_file)
        (source,) = [s["source"] for s in service["secrets"] if s["target"] == secret_file]
        example = ROOT / (compose["secrets"][source]["file"] + ".example")
        assert example.read_text().strip() == server_keys[key] == egress["api_secret"], name
        assert secret_file.startswith("/run/secrets/"), name  # never in the environment

        organisations = set(settings.livekit_organisations)
        assert organisations, name  # LiveKit serves someone, or it should not be configured
        scope = webhook_keys[key]["organisations"]
        assert scope == "*" or (organisations <= set(scope) and "*" not in organisations), name
        configured.add(tuple(sorted((k, v) for k, v in environment.items() if "LIVEKIT" in k)))
    assert len(configured) == 1, configured  # the same platform whichever instance runs it
