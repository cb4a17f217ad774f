"""Exception types that carry a message meant for the user.

The CLI prints ``str(error)`` of these types without a traceback and exits with the
error's ``exit_code``. Anything else reaching the CLI is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "AdaptlabError",
    "CheckpointError",
    "ComponentBuildError",
    "PluginError",
    "RegistryError",
    "RunError",
    "SpecError",
]


class AdaptlabError(Exception):
    """Base class of errors caused by user input rather than by a bug."""

    exit_code = 1


class SpecError(AdaptlabError):
    """A spec file, its ``extends:`` chain or an override is invalid.

    ``problems`` contains one line per problem so that all of them are reported at once.
    """

    exit_code = 2

    def __init__(self, problems: str | list[str], source: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.source = source
        super().__init__(self._format())

    def _format(self) -> str:
        head = f"invalid spec {self.source}" if self.source else "invalid spec"
        if len(self.problems) == 1:
            return f"{head}: {self.problems[0]}"
        lines = [f"{head}: {len(self.problems)} problems"]
        lines += [f"  - {problem}" for problem in self.problems]
        return "\n".join(lines)


class RegistryError(AdaptlabError):
    """A component look-up failed or two plugins registered the same name."""

    exit_code = 2


class PluginError(AdaptlabError):
    """A plugin failed to import, raised inside a hook or targets another hook API."""

    def __init__(self, plugin: str, message: str) -> None:
        self.plugin = plugin
        super().__init__(f"plugin {plugin!r}: {message}")


class ComponentBuildError(AdaptlabError):
    """A component's factory rejected its configuration or its inputs."""

    exit_code = 2


class CheckpointError(AdaptlabError):
    """A checkpoint is missing, truncated or does not match its recorded hash."""

    exit_code = 2


class RunError(AdaptlabError):
    """A run directory is missing, incomplete or cannot be resumed as requested."""

    exit_code = 2
