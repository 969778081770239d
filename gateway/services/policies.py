"""Which written policy applies to which organisation."""

from __future__ import annotations

from pathlib import Path

from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.policy import Policy, PolicyError, parse_policy


def load_policy_file(path: Path) -> Policy:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError("(file)", f"cannot read {path}: {exc.strerror}") from exc
    return parse_policy(text)


class PolicyBook:
    """The default policy plus organisations' own files, each validated when first loaded."""

    def __init__(self, default: Policy) -> None:
        self.default = default
        self._by_path: dict[str, Policy] = {}

    def for_path(self, path: str | None) -> Policy:
        if path is None:
            return self.default
        policy = self._by_path.get(path)
        if policy is None:
            try:
                policy = load_policy_file(Path(path))
            except PolicyError as exc:
                raise Refusal(ErrorCode.POLICY_INVALID, f"Policy file invalid: {exc}") from exc
            self._by_path[path] = policy
        return policy
