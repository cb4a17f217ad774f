"""Command-line interface: ``adaptlab COMMAND``.

Listing, describing, validating and ``--help`` import only pydantic, pluggy and PyYAML; torch
and the other heavy libraries are imported by the commands that build components.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import textwrap
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from adaptlab.core.contracts import COMPONENT_KINDS
from adaptlab.core.errors import AdaptlabError

__all__ = ["main"]

logger = logging.getLogger("adaptlab.cli")

EXIT_USAGE = 2


def _global_options() -> argparse.ArgumentParser:
    """Options that come before the command; parsed first, as they choose the plugins."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "-v", "--verbose", action="count", default=0, help="More log output (repeat for debug)."
    )
    options.add_argument("-q", "--quiet", action="store_true", help="Only warnings and errors.")
    options.add_argument(
        "--disable-plugin",
        action="append",
        default=[],
        metavar="NAME",
        help="Do not load the plugin NAME (repeatable; adds to ADAPTLAB_DISABLE_PLUGINS).",
    )
    options.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="NAME",
        help="Load only the named plugins (repeatable; replaces ADAPTLAB_PLUGINS).",
    )
    options.add_argument(
        "--no-plugin-autoload",
        action="store_true",
        help="Load no installed plugin unless named by --plugin or ADAPTLAB_PLUGINS.",
    )
    return options


def _parser(plugin_commands: Mapping[str, Any] | None = None) -> argparse.ArgumentParser:
    """Build the CLI parser: built-in commands plus the commands that loaded plugins register."""
    parser = argparse.ArgumentParser(
        prog="adaptlab",
        description="Compose, train and evaluate parameter-efficient and adaptive models "
        "from YAML specs.",
        parents=[_global_options()],
    )
    from adaptlab.core import __version__

    parser.add_argument("--version", action="version", version=f"adaptlab {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    commands.add_parser("plugins", help="List plugins with versions, hook API and components.")

    components = commands.add_parser("components", help="List registered components.")
    components.add_argument(
        "kind", nargs="?", help=f"Component kind ({', '.join(COMPONENT_KINDS)}) or a name pattern."
    )
    components.add_argument("pattern", nargs="?", default="*", help="Name pattern, e.g. 'lo*'.")

    describe = commands.add_parser("describe", help="Show a component's configuration fields.")
    describe.add_argument("kind", help=f"Component kind: {', '.join(COMPONENT_KINDS)}.")
    describe.add_argument("name", help="Component name.")
    describe.add_argument("--json", action="store_true", help="Print the JSON Schema instead.")

    def add_spec_arguments(sub: argparse.ArgumentParser) -> None:
        sub.usage = f"adaptlab {sub.prog.split()[-1]} [-h] SPEC [PATH=VALUE ...]"
        sub.add_argument(
            "spec_and_overrides",
            nargs="+",
            metavar="SPEC",
            help="Spec file (YAML), then optional overrides PATH=VALUE such as train.epochs=3.",
        )

    validate = commands.add_parser("validate", help="Validate a spec; exit status 2 if invalid.")
    add_spec_arguments(validate)
    validate.add_argument(
        "--build",
        action="store_true",
        help="Also build the dataset and the model (imports torch), which catches problems "
        "only a build can see: an unknown timm model, adapter targets that match no layer, "
        "a missing data folder.",
    )
    show = commands.add_parser("show", help="Print the resolved spec with every default.")
    add_spec_arguments(show)

    schema = commands.add_parser("schema", help="Print the JSON Schema of the spec language.")
    schema.add_argument("-o", "--output", type=Path, help="Write to this file instead.")

    train = commands.add_parser("train", help="Train a spec, or resume a run with --resume.")
    train.usage = "adaptlab train [-h] [--resume RUN_DIR] [SPEC [PATH=VALUE ...]]"
    train.add_argument(
        "spec_and_overrides",
        nargs="*",
        metavar="SPEC",
        help="Spec file (optional with --resume), then overrides such as train.epochs=3.",
    )
    train.add_argument(
        "--resume", type=Path, metavar="RUN_DIR", help="Continue this run from its last checkpoint."
    )

    evaluate = commands.add_parser("evaluate", help="Evaluate a finished or interrupted run.")
    evaluate.add_argument("run_dir", type=Path, help="Run folder written by `adaptlab train`.")
    evaluate.add_argument("--split", default="test", help="Dataset split (default: test).")
    evaluate.add_argument(
        "--checkpoint",
        default="best",
        help="Checkpoint to load: best, last, or an epoch number (default: best).",
    )
    for name, command in sorted((plugin_commands or {}).items()):
        sub = commands.add_parser(name, help=f"{command.summary} [plugin {command.plugin}]")
        try:
            command.arguments(sub)
        except Exception as error:  # noqa: BLE001 - a plugin's bug must not break the CLI
            logger.warning(
                "plugin %r: the arguments of command %r failed: %s: %s",
                command.plugin, name, type(error).__name__, error,
            )
    return parser


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.INFO
    if quiet:
        level = logging.WARNING
    elif verbose > 1:
        level = logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    # The handler filters too: a run raises the adaptlab logger to INFO for its train.log,
    # and the console must still honour --quiet.
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("adaptlab").setLevel(level)


def _registry(arguments: argparse.Namespace) -> Any:
    """The registry for the plugins chosen by the global options, loaded once per process."""
    from adaptlab.registry import PluginSelection, load_registry, reset_registry

    cached = getattr(arguments, "_registry", None)
    if cached is not None:
        return cached
    selection = PluginSelection.from_environment()
    selection.disabled += arguments.disable_plugin
    if arguments.plugin:
        selection.only = list(arguments.plugin)
    if arguments.no_plugin_autoload:
        selection.autoload = False
    registry = load_registry(selection)
    reset_registry(registry)
    arguments._registry = registry
    return registry


def _print(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Format rows as an aligned table that fits the terminal, wrapping long cells.

    Columns keep their natural width while the table fits; otherwise the widest columns are
    narrowed (to no less than 12 characters) and their cells wrap onto continuation lines.
    """
    cells = [[h.upper() for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    available = shutil.get_terminal_size(fallback=(120, 24)).columns - 2 * (len(widths) - 1) - 1
    while sum(widths) > available:
        widest = max(range(len(widths)), key=lambda i: widths[i])
        if widths[widest] <= 12:
            break
        widths[widest] -= 1
    lines = []
    for row in cells:
        wrapped = [textwrap.wrap(cell, width) or [""] for cell, width in zip(row, widths)]
        for index in range(max(len(parts) for parts in wrapped)):
            pieces = [
                (parts[index] if index < len(parts) else "").ljust(width)
                for parts, width in zip(wrapped, widths)
            ]
            lines.append("  ".join(pieces).rstrip())
    return "\n".join(lines)


def _command_plugins(arguments: argparse.Namespace) -> int:
    registry = _registry(arguments)
    rows = []
    for record in sorted(registry.plugins.values(), key=lambda r: r.name):
        status = "ok" if record.loaded else f"FAILED: {record.error}"
        rows.append(
            [
                record.name,
                record.version,
                record.hook_api or "-",
                ", ".join(record.components) or "-",
                status,
            ]
        )
    if not rows:
        _print("no plugins loaded (check ADAPTLAB_PLUGINS and ADAPTLAB_DISABLE_PLUGIN_AUTOLOAD)")
    else:
        _print(_table(["plugin", "version", "hook api", "components", "status"], rows))
    for problem in registry.problems:
        if not any(problem.endswith(str(r.error)) for r in registry.plugins.values() if r.error):
            _print(f"problem: {problem}")
    return 0


def _command_components(arguments: argparse.Namespace) -> int:
    registry = _registry(arguments)
    kind, pattern = arguments.kind, arguments.pattern
    if kind is not None and kind not in COMPONENT_KINDS:
        if arguments.pattern != "*":
            registry.find(kind)  # raises the unknown-kind error with a suggestion
        kind, pattern = None, kind
    components = registry.find(kind, pattern)
    rows = [[c.kind, c.name, c.plugin, c.summary] for c in components]
    if rows:
        _print(_table(["kind", "name", "plugin", "summary"], rows))
        return 0
    from adaptlab.registry import suggest

    message = f"no {kind or 'component'} matches {pattern!r}"
    hint = suggest(pattern, list(COMPONENT_KINDS)) if kind is None else ""
    if hint:
        message += f"; as a kind, {hint}"
    _print(message)
    return 0


def _command_describe(arguments: argparse.Namespace) -> int:
    from adaptlab.core.spec._schema import describe_fields

    registry = _registry(arguments)
    component = registry.get(arguments.kind, arguments.name)
    if arguments.json:
        _print(json.dumps(component.config.model_json_schema(), indent=2))
        return 0
    _print(f"{component.kind} {component.name!r} from plugin {component.plugin!r} "
           f"{component.plugin_version}")
    if component.summary:
        _print(component.summary)
    _print()
    rows = [
        [row["name"], row["type"], row["default"], row["description"]]
        for row in describe_fields(component.config)
    ]
    _print(_table(["field", "type", "default", "description"], rows) if rows else "no fields")
    return 0


def _split_spec_arguments(arguments: argparse.Namespace) -> None:
    """Set ``arguments.spec`` and ``arguments.overrides`` from the positional list."""
    values = list(arguments.spec_and_overrides)
    arguments.spec = None
    # The first argument is the spec unless it looks like an override (and is not a file).
    if values and ("=" not in values[0] or Path(values[0]).is_file()):
        arguments.spec = Path(values.pop(0))
    arguments.overrides = values
    for value in values:
        if "=" not in value:
            raise _UsageError(
                f"invalid override {value!r}: expected dotted.path=value after the spec file"
            )


def _load(arguments: argparse.Namespace) -> Any:
    from adaptlab.core.spec import load_spec

    if arguments.spec is None:
        raise _UsageError(f"the first argument must be the spec file, not {arguments.overrides[0]!r}")
    return load_spec(arguments.spec, arguments.overrides, registry=_registry(arguments))


def _command_validate(arguments: argparse.Namespace) -> int:
    spec = _load(arguments)
    parts = [f"dataset {spec.data.name}"]
    if spec.model.backbone is not None:
        parts.append(f"backbone {spec.model.backbone.name}")
    if spec.model.graph_encoder is not None:
        parts.append(f"graph encoder {spec.model.graph_encoder.name}")
    if spec.model.adapter is not None:
        parts.append(f"adapter {spec.model.adapter.name}")
    if spec.model.policy is not None:
        parts.append(f"policy {spec.model.policy.name}")
    heads = len(spec.model.heads)
    parts.append(f"{heads} head" if heads == 1 else f"{heads} heads")
    parts.append(f"recipe {spec.train.name}")
    _print(f"{arguments.spec}: valid ({', '.join(parts)})")
    if arguments.build:
        from adaptlab.core.compose import build_data, build_model, parameter_groups

        bundle = build_data(spec)
        model = build_model(spec, bundle.tasks)
        groups = parameter_groups(model)
        trainable = sum(group["trainable"] for group in groups.values())
        total = sum(group["total"] for group in groups.values())
        sizes = ", ".join(f"{name} {len(split)}" for name, split in bundle.splits.items())
        _print(f"built: splits {sizes}; {trainable:,} of {total:,} parameters trainable")
        _print(f"trainable by group: {_format_groups(groups)}")
    return 0


def _format_groups(groups: dict[str, dict[str, int]]) -> str:
    """Format ``parameter_groups`` output as ``adapter 1,024 of 1,024, backbone 0 of ...``."""
    return ", ".join(
        f"{name} {counts['trainable']:,} of {counts['total']:,}" for name, counts in groups.items()
    )


def _command_show(arguments: argparse.Namespace) -> int:
    import yaml

    spec = _load(arguments)
    _print(yaml.safe_dump(spec.to_data(), sort_keys=False).rstrip())
    return 0


def _command_schema(arguments: argparse.Namespace) -> int:
    from adaptlab.core.spec._schema import spec_json_schema

    text = json.dumps(spec_json_schema(_registry(arguments)), indent=2)
    if arguments.output:
        try:
            arguments.output.write_text(text + "\n", encoding="utf-8")
        except OSError as error:
            raise _UsageError(
                f"cannot write {arguments.output}: {error.strerror or error}; "
                "choose a path in an existing, writable folder"
            ) from None
        _print(f"wrote {arguments.output}")
    else:
        _print(text)
    return 0


def _command_train(arguments: argparse.Namespace) -> int:
    from adaptlab.core.training import api

    registry = _registry(arguments)
    if arguments.spec is None and arguments.resume is None:
        raise _UsageError("train needs a SPEC file, or --resume RUN_DIR")
    if arguments.spec is not None:
        from adaptlab.core.spec import load_spec

        spec = load_spec(arguments.spec, arguments.overrides, registry=registry)
    else:
        if arguments.overrides:
            raise _UsageError(
                "overrides cannot change a resumed run, which keeps its stored spec; resume "
                "without them, or start a new run from the spec file with the overrides"
            )
        spec = api.load_run_spec(arguments.resume, registry=registry)
    summary = api.train(spec, resume_dir=arguments.resume, registry=registry)
    _print_summary(summary)
    return 0


def _metrics_rows(metrics: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, value in sorted(metrics.items()):
        if name == "loss" and any(key.endswith("/loss") for key in metrics) and len(
            [key for key in metrics if key.endswith("/loss")]
        ) == 1:
            continue  # with one task the total loss repeats that task's loss
        rows.append([name, f"{value:.4f}" if isinstance(value, float) else str(value)])
    return rows


def _print_summary(summary: dict[str, Any]) -> None:
    best = summary.get("best") or {}
    best_metrics = summary.get("best_metrics")
    final_metrics = summary.get("final_metrics")
    if best_metrics:
        _print(f"validation metrics of the best epoch ({best.get('epoch')}):")
        _print(_table(["metric", "value"], _metrics_rows(best_metrics)))
    elif final_metrics:
        _print(f"validation metrics of the last epoch ({summary.get('epochs_completed')}):")
        _print(_table(["metric", "value"], _metrics_rows(final_metrics)))
    parameters = summary.get("parameters")
    if parameters:
        share = 100.0 * parameters["trainable"] / max(parameters["total"], 1)
        _print(f"trainable parameters: {parameters['trainable']:,} of {parameters['total']:,} "
               f"({share:.2f} %)")
        if parameters.get("groups"):
            _print(f"trainable by group: {_format_groups(parameters['groups'])}")
    status = summary.get("status", "finished")
    _print(f"run {status}: {summary.get('run_dir')}")


def _command_evaluate(arguments: argparse.Namespace) -> int:
    from adaptlab.core.training import api

    split, metrics = api.evaluate_run(
        arguments.run_dir,
        split=arguments.split,
        checkpoint=arguments.checkpoint,
        registry=_registry(arguments),
    )
    if split != arguments.split:
        _print(f"the dataset has no {arguments.split!r} split, so {split!r} was evaluated")
    _print(f"{split} metrics of checkpoint {arguments.checkpoint} "
           f"(written to {arguments.run_dir / ('eval-' + split + '.json')}):")
    _print(_table(["metric", "value"], _metrics_rows(metrics)))
    return 0


class _UsageError(AdaptlabError):
    exit_code = EXIT_USAGE


COMMANDS = {
    "plugins": _command_plugins,
    "components": _command_components,
    "describe": _command_describe,
    "validate": _command_validate,
    "show": _command_show,
    "schema": _command_schema,
    "train": _command_train,
    "evaluate": _command_evaluate,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status (0 success, 1 failure, 2 invalid input)."""
    options, _ = _global_options().parse_known_args(argv)
    _configure_logging(options.verbose, options.quiet)
    registry = _registry(options)
    arguments = _parser(registry.commands).parse_args(argv)
    arguments._registry = registry
    # torch_geometric 2.8 still calls torch.jit.script, which torch 2.14 marks deprecated; the
    # warning is meant for torch_geometric's developers, not for people running a spec.
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
    try:
        if hasattr(arguments, "spec_and_overrides"):
            _split_spec_arguments(arguments)
        if arguments.command in COMMANDS:
            return COMMANDS[arguments.command](arguments)
        return int(registry.commands[arguments.command].load_run()(arguments) or 0)
    except AdaptlabError as error:
        sys.stderr.write(f"error: {error}\n")
        return error.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
