"""The Reference section of the docs site, generated at build time from the code (mkdocs hook).

Each page is rendered from the thing it documents, so it cannot drift: the CRD schemas in
``crds/``, the operator's argparse parser, the reason catalogue, the Prometheus collectors, the
chart's ``values.schema.json`` with the ``# --`` comments of ``values.yaml``, the kubectl
plugin's parser and the emulator's configuration; and Contributing's module map, from each
module's docstring. ``missing_descriptions`` lists what has no
description; tests/test_docs.py fails on any.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "crds"
CHART = REPO / "charts" / "aks-runcommand-operator"
GENERATED_NOTE = "*Generated at build time from {source}; edit that, not this page.*\n\n"


def _header(title: str, source: str) -> list[str]:
    """A generated page's title and the note that says what it is generated from."""
    return [f"# {title}\n\n", GENERATED_NOTE.format(source=source)]


def _cell(text: object) -> str:
    """One Markdown table cell: no newlines, no bare pipes."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(value: object) -> str:
    if isinstance(value, str) and value:
        return f"`{value}`"
    return f"`{json.dumps(value)}`"  # "" shows as "", not as an empty code span


# ---- CRDs ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Field:
    path: str
    type: str
    default: str
    validation: str
    description: str


def _schema_type(schema: Mapping[str, Any]) -> str:
    kind = str(schema.get("type", ""))
    if schema.get("x-kubernetes-int-or-string"):
        kind = "integer or string"
    if kind == "array":
        kind = f"array of {_schema_type(schema.get('items', {})) or 'any'}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), Mapping):
        kind = f"map of {_schema_type(schema['additionalProperties']) or 'any'}"
    if schema.get("format"):
        kind += f" ({schema['format']})"
    return kind


def _validation(schema: Mapping[str, Any]) -> str:
    rules = []
    for key in ("minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems",
                "minProperties", "maxProperties", "pattern"):  # fmt: skip
        if key in schema:
            rules.append(f"{key}: {_code(schema[key])}")
    if "enum" in schema:
        rules.append("one of " + ", ".join(_code(v) for v in schema["enum"]))
    if schema.get("required"):
        rules.append("requires " + ", ".join(f"`{r}`" for r in schema["required"]))
    for rule in schema.get("x-kubernetes-validations", []):
        message = rule.get("message") or rule.get("messageExpression") or ""
        rules.append(f"CEL `{rule['rule']}`: {message}")
    return "; ".join(rules)


def schema_fields(schema: Mapping[str, Any], prefix: str) -> Iterator[Field]:
    """Every property under ``schema``, depth first, with its path as kubectl explain names it."""
    for name, sub in (schema.get("properties") or {}).items():
        path = f"{prefix}.{name}" if prefix else name
        yield Field(
            path,
            _schema_type(sub),
            _code(sub["default"]) if "default" in sub else "",
            _validation(sub),
            str(sub.get("description", "")).strip(),
        )
        yield from schema_fields(sub, path)
        items = sub.get("items")
        if isinstance(items, Mapping):
            yield from schema_fields(items, f"{path}[]")
        extra = sub.get("additionalProperties")
        if isinstance(extra, Mapping):
            yield from schema_fields(extra, f"{path}.*")


def crd_documents() -> list[dict[str, Any]]:
    return [yaml.safe_load(path.read_text()) for path in sorted(CRDS.glob("*.yaml"))]


def crd_page_name(crd: Mapping[str, Any]) -> str:
    return f"reference/crd-{crd['spec']['names']['plural']}.md"


def crd_fields(crd: Mapping[str, Any]) -> Iterator[tuple[str, Field]]:
    for version in crd["spec"]["versions"]:
        schema = version["schema"]["openAPIV3Schema"]
        for field in schema_fields(schema, ""):
            if field.path.split(".")[0] in ("apiVersion", "kind", "metadata"):
                continue
            yield version["name"], field


def crd_page(crd: Mapping[str, Any]) -> str:
    names = crd["spec"]["names"]
    group = crd["spec"]["group"]
    out = _header(names["kind"], f"the CRD schema `crds/{group}_{names['plural']}.yaml`")
    short = ", ".join(f"`{s}`" for s in names.get("shortNames", [])) or "none"
    out.append(
        f"`{group}`, {crd['spec']['scope']}, plural `{names['plural']}`, short names {short}. "
        f"`kubectl explain {names['plural']}.spec` gives the same descriptions.\n\n"
    )
    for version in crd["spec"]["versions"]:
        schema = version["schema"]["openAPIV3Schema"]
        out.append(f"## {version['name']}\n\n")
        if schema.get("description"):
            out.append(str(schema["description"]).strip() + "\n\n")
        for rule in schema.get("x-kubernetes-validations", []):
            out.append(f"- CEL `{rule['rule']}`: {rule.get('message', '')}\n")
        columns = version.get("additionalPrinterColumns", [])
        if columns:
            out.append("\n`kubectl get` columns: ")
            out.append(", ".join(f"{c['name']} (`{c['jsonPath']}`)" for c in columns) + ".\n\n")
        for top in ("spec", "status"):
            rows = [f for f in schema_fields(schema, "") if f.path.split(".")[0] == top]
            if not rows:
                continue
            out.append(f"### {top}\n\n| Field | Type | Default | Validation | Description |\n")
            out.append("|---|---|---|---|---|\n")
            for f in rows:
                out.append(
                    f"| `{f.path}` | {_cell(f.type)} | {_cell(f.default)} | "
                    f"{_cell(f.validation)} | {_cell(f.description)} |\n"
                )
            out.append("\n")
    return "".join(out)


# ---- the operator's flags -----------------------------------------------------------------------

ENV_IN_HELP = re.compile(r"env ([A-Z][A-Z0-9_]+)")


def _absent(default: object) -> bool:
    """No default worth showing: None, a flag's False, an empty string or list (0 is shown)."""
    return default is None or default is False or default in ("", [], argparse.SUPPRESS)


def parser_options(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:  # argparse has no public list of its actions
        if action.option_strings and not isinstance(action, argparse._HelpAction):
            yield action


def operator_flags_page() -> str:
    from controller.config import parser

    out = _header(
        "Operator flags and environment", "the operator's table of flags (`controller/flags.py`)"
    )
    out.append(
        "Flags win over environment variables. The chart sets them from its values (see "
        "[Helm values](helm-values.md)). Defaults are those of an empty environment.\n\n"
        "| Flag | Environment | Default | Choices | Description |\n|---|---|---|---|---|\n"
    )
    for action in parser_options(parser({})):
        flags = ", ".join(f"`{o}`" for o in action.option_strings)
        env = ", ".join(f"`{e}`" for e in ENV_IN_HELP.findall(action.help or ""))
        default = action.default
        if action.dest == "instance_name":
            default = "the host name"  # socket.gethostname() of the machine building the docs
        shown = "" if _absent(default) else _code(default)
        choices = ", ".join(f"`{c}`" for c in action.choices or ())
        out.append(
            f"| {flags} | {env} | {_cell(shown)} | {choices} | {_cell(action.help or '')} |\n"
        )
    out.append(
        "\n## Environment without a flag\n\nRead as azure-identity's standard variables name "
        "them; on AKS the workload identity webhook sets them (see "
        "[Workload identity](../install/workload-identity.md)).\n\n"
        "| Variable | Read for |\n|---|---|\n"
    )
    for variable, doc in environment_read_directly():
        out.append(f"| `{variable}` | {_cell(doc)} |\n")
    return "".join(out)


def environment_read_directly(in_parser: bool = False) -> list[tuple[str, str]]:
    """(variable, what it is read for): with `in_parser`, those of the flags' table
    (controller/flags.py, each with its flag's help); else every ``env.get("NAME")`` of
    controller/config.py, with the docstring of the function that reads it (the ones no flag
    stands for)."""
    import ast

    if in_parser:
        from controller.flags import FLAGS

        return sorted({(flag.env, flag.help) for flag in FLAGS if flag.env is not None})
    found = []
    tree = ast.parse((REPO / "controller" / "config.py").read_text())
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef):
            continue
        doc = " ".join((ast.get_docstring(function) or "").split())
        for node in ast.walk(function):
            if (  # env.get("NAME", ...)
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "env"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.append((str(node.args[0].value), doc))
    return sorted(set(found))


# ---- states, reasons, conditions ----------------------------------------------------------------


def reasons_page() -> str:
    from controller.core.conditions import CONDITION_DESCRIPTIONS
    from controller.vocabulary import DESCRIPTIONS, STATE_DESCRIPTIONS, Reason, State

    out = _header(
        "States, reasons and conditions", "the vocabulary (`controller/vocabulary.py`)"
    )
    out.append(
        "ARM's own error codes (`ResourceNotFound`, `AuthorizationFailed`, ...) are passed "
        "through as reasons verbatim and are not listed here; see "
        "[Troubleshooting](../guides/troubleshooting.md) for what to do about each.\n\n"
        "## States (`status.state`)\n\n| State | Final | Description |\n|---|---|---|\n"
    )
    for state in State:
        out.append(
            f"| `{state}` | {'yes' if state.final else 'no'} | "
            f"{_cell(STATE_DESCRIPTIONS.get(state, ''))} |\n"
        )
    out.append("\n## Reasons (`status.reason`)\n\n| Reason | Description |\n|---|---|\n")
    for reason in Reason:
        out.append(f"| `{reason}` | {_cell(DESCRIPTIONS.get(reason, ''))} |\n")
    out.append("\n## Conditions\n\n| Type | Description |\n|---|---|\n")
    for kind, text in CONDITION_DESCRIPTIONS.items():
        out.append(f"| `{kind}` | {_cell(text)} |\n")
    return "".join(out)


# ---- metrics ------------------------------------------------------------------------------------


def metrics_page() -> str:
    from prometheus_client import REGISTRY

    import controller.metrics  # noqa: F401 - registers the operator's collectors

    out = _header("Metrics", "the Prometheus registry (`controller/metrics.py`)")
    out.append(
        "Served on `/metrics` with `--metrics-port` (chart: `metrics.enabled`). The process "
        "and platform collectors of prometheus_client are served too and not listed here.\n\n"
        "| Metric | Type | Labels | Description |\n|---|---|---|---|\n"
    )
    for family in sorted(REGISTRY.collect(), key=lambda f: f.name):
        if not family.name.startswith("aks_runcommand"):
            continue
        labels = sorted({k for s in family.samples for k in s.labels})
        if not labels:
            labels = sorted(_label_names(family.name))
        suffix = "_total" if family.type == "counter" else ""
        out.append(
            f"| `{family.name}{suffix}` | {family.type} | "
            f"{', '.join(f'`{x}`' for x in labels)} | {_cell(family.documentation)} |\n"
        )
    return "".join(out)


def _label_names(name: str) -> tuple[str, ...]:
    """A collector's label names, before any sample exists (families list only samples')."""
    from prometheus_client import REGISTRY

    for collector, names in REGISTRY._collector_to_names.items():  # no public lookup exists
        if name in names:
            return tuple(getattr(collector, "_labelnames", ()))
    return ()


# ---- Helm values --------------------------------------------------------------------------------

KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_]+):")


def values_comments(text: str) -> dict[str, str]:
    """``# --`` comments of values.yaml, by dotted key: the helm-docs convention."""
    comments: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            pending = [stripped[4:].strip()]
            continue
        if stripped.startswith("#") and pending is not None:
            pending.append(stripped[1:].strip())
            continue
        match = KEY_LINE.match(line)
        if match:
            indent = len(match["indent"])
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, match["key"]))
            if pending is not None:
                comments[".".join(k for _, k in stack)] = " ".join(pending).strip()
        if not stripped or not stripped.startswith("#"):
            pending = None
    return comments


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/definitions/"):
        return dict(
            root["definitions"][ref.split("/")[-1]],
            **{k: v for k, v in schema.items() if k != "$ref"},
        )
    return schema


def helm_values() -> list[tuple[str, Mapping[str, Any], str, object]]:
    """(dotted key, its schema, its description, its default in values.yaml) for every value."""
    root = json.loads((CHART / "values.schema.json").read_text())
    comments = values_comments((CHART / "values.yaml").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    rows: list[tuple[str, Mapping[str, Any], str, object]] = []

    def walk(schema: Mapping[str, Any], prefix: str, values: object) -> None:
        for name, sub in (schema.get("properties") or {}).items():
            sub = _resolve(sub, root)
            key = f"{prefix}{name}"
            default = values.get(name) if isinstance(values, Mapping) else None
            if key == "global":  # Helm's own, for subcharts; not a value of this chart
                continue
            rows.append((key, sub, comments.get(key) or str(sub.get("description", "")), default))
            if sub.get("properties"):
                walk(sub, key + ".", default)

    walk(root, "", defaults)
    return rows


def helm_values_page() -> str:
    out = _header(
        "Helm values",
        "`charts/aks-runcommand-operator/values.schema.json` and the `# --` comments of its "
        "`values.yaml`",
    )
    out.append(
        "`helm install` refuses unknown keys and wrong types (the schema).\n\n"
        "| Value | Type | Default | Validation | Description |\n|---|---|---|---|---|\n"
    )
    for key, schema, description, default in helm_values():
        shown = "" if isinstance(default, Mapping) else _code(default)
        out.append(
            f"| `{key}` | {_cell(_schema_type(schema))} | {_cell(shown)} | "
            f"{_cell(_validation(schema))} | {_cell(description)} |\n"
        )
    return "".join(out)


# ---- the kubectl plugin -------------------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def plugin_page() -> str:
    from kubectl_runcommand.outcome import EXIT_CODES
    from kubectl_runcommand.parser import build_parser as plugin_parser

    parser = plugin_parser()
    out = _header(
        "kubectl plugin", "the plugin's argument parser (`kubectl-plugin/kubectl_runcommand`)"
    )
    out.append(
        f"{parser.description}\n\n"
        "The [Pipelines guide](../guides/pipelines.md) shows it at work.\n\n"
    )
    helps = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {c.dest: c.help for c in action._choices_actions}
    for name, sub in _subcommands(parser).items():
        out.append(f"## `kubectl runcommand {name}`\n\n{helps.get(name, '')}\n\n")
        out.append("```text\n" + sub.format_usage().replace("usage: ", "") + "```\n\n")
        out.append("| Argument | Default | Description |\n|---|---|---|\n")
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            flag = (
                ", ".join(f"`{o}`" for o in action.option_strings)
                or f"`{action.metavar or action.dest}`"
            )
            default = (
                ""
                if action.default in (None, False, [], argparse.SUPPRESS)
                else _code(action.default)
            )
            out.append(f"| {flag} | {_cell(default)} | {_cell(action.help or '')} |\n")
        out.append("\n")
    out.append("## Exit codes\n\n| Code | Meaning |\n|---|---|\n")
    out.append(
        "| the command's own (0-255) | The command ran: `Succeeded`, or `Failed` with reason "
        "`CommandFailed`. |\n"
    )
    for code, meaning in sorted(EXIT_CODES.items()):
        out.append(f"| {code} | {_cell(meaning)} |\n")
    out.append("| 2 | Usage error (argparse). |\n")
    return "".join(out)


# ---- the emulator -------------------------------------------------------------------------------


def emulator_page() -> str:
    from aks_arm_emulator import config
    from aks_arm_emulator.__main__ import build_parser

    out = _header(
        "Emulator configuration", "the emulator's parser and `aks_arm_emulator/config/`"
    )
    out.append(
        "The emulator (`emulator/`, distribution `aks-arm-emulator`) is a local ARM and Entra "
        "ID for tests, the demo and the az CLI; it is not part of the image.\n\n"
        "## Flags\n\n| Flag | Default | Description |\n|---|---|---|\n"
    )
    for action in parser_options(build_parser()):
        default = "" if _absent(action.default) else _code(action.default)
        out.append(
            f"| {', '.join(f'`{o}`' for o in action.option_strings)} | {_cell(default)} | "
            f"{_cell(action.help or '')} |\n"
        )
    out.append(
        "\n## The YAML file (`--config`)\n\nKeys are the fields below in camelCase. An example:\n\n"
    )
    out.append("```yaml\n" + config.EXAMPLE_YAML + "```\n\n")
    for cls in (config.EmulatorConfig, config.ClusterConfig, config.ScriptedConfig,
                config.ThrottleRules, config.ProviderLimits, config.BucketRules,
                config.FaultsConfig, config.SigninConfig, config.ApiVersionRange):  # fmt: skip
        out.append(f"### {cls.__name__}\n\n")
        if cls.__doc__ and not cls.__doc__.startswith(f"{cls.__name__}("):  # not dataclass's own
            out.append(" ".join(cls.__doc__.split()) + "\n\n")
        out.append("| Key | Type | Default |\n|---|---|---|\n")
        for field in dataclasses.fields(cls):
            if field.default is not dataclasses.MISSING:
                default = (
                    _code(field.default)
                    if not dataclasses.is_dataclass(field.default)
                    else "see its table"
                )
            elif field.default_factory is not dataclasses.MISSING:
                default = _code(field.default_factory())
            else:
                default = "required"
            out.append(
                f"| `{config.camel_case(field.name)}` | `{_cell(field.type)}` | "
                f"{_cell(default)} |\n"
            )
        out.append("\n")
    return "".join(out)


# ---- the module map ------------------------------------------------------------------------------

PACKAGES = (
    ("controller", REPO / "controller"),
    ("aks_arm_emulator", REPO / "emulator" / "aks_arm_emulator"),
    ("kubectl_runcommand", REPO / "kubectl-plugin" / "kubectl_runcommand"),
)


def modules() -> list[tuple[str, str]]:
    """(dotted module, the first paragraph of its docstring) for every module of the three."""
    import ast

    found = []
    for package, root in PACKAGES:
        for path in sorted(root.rglob("*.py")):
            if path.name == "__init__.py":
                continue
            dotted = ".".join((package, *path.relative_to(root).with_suffix("").parts))
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            found.append((dotted, " ".join(doc.split("\n\n")[0].split())))
    return found


def module_map_page() -> str:
    out = _header("Module map", "each module's docstring")
    out.append(
        "Every module of the three distributions, with the first paragraph of its docstring. "
        "The rules between them are on the [Architecture](../concepts/architecture.md) page.\n\n"
    )
    current = ""
    for dotted, doc in modules():
        package = dotted.split(".")[0]
        if package != current:
            current = package
            out.append(f"\n## `{package}`\n\n| Module | What it is |\n|---|---|\n")
        out.append(f"| `{dotted}` | {_cell(doc)} |\n")
    return "".join(out)


# ---- the section --------------------------------------------------------------------------------


def reference_index(crds: list[dict[str, Any]]) -> str:
    out = ["# Reference\n\n", "Every page here is generated at build time from the code.\n\n"]
    for crd in crds:
        out.append(f"- [{crd['spec']['names']['kind']}]({Path(crd_page_name(crd)).name})\n")
    for title, page in (
        ("Operator flags and environment", "operator-flags.md"),
        ("States, reasons and conditions", "reasons.md"),
        ("Metrics", "metrics.md"),
        ("Helm values", "helm-values.md"),
        ("kubectl plugin", "kubectl-plugin.md"),
        ("Emulator configuration", "emulator.md"),
    ):
        out.append(f"- [{title}]({page})\n")
    return "".join(out)


def pages() -> dict[str, str]:
    crds = crd_documents()
    generated = {crd_page_name(crd): crd_page(crd) for crd in crds}
    generated.update(
        {
            "reference/index.md": reference_index(crds),
            "reference/operator-flags.md": operator_flags_page(),
            "reference/reasons.md": reasons_page(),
            "reference/metrics.md": metrics_page(),
            "reference/helm-values.md": helm_values_page(),
            "reference/kubectl-plugin.md": plugin_page(),
            "reference/emulator.md": emulator_page(),
            "contributing/modules.md": module_map_page(),
        }
    )
    return generated


def missing_descriptions() -> list[str]:
    """Every flag, CRD field, reason, state and Helm value without a description."""
    from controller.config import parser
    from controller.vocabulary import DESCRIPTIONS, STATE_DESCRIPTIONS, Reason, State

    missing = [
        f"flag {a.option_strings[0]}"
        for a in parser_options(parser({}))
        if not (a.help or "").strip()
    ]
    for crd in crd_documents():
        kind = crd["spec"]["names"]["kind"]
        missing += [f"{kind} {v} field {f.path}" for v, f in crd_fields(crd) if not f.description]
    missing += [f"reason {r}" for r in Reason if not DESCRIPTIONS.get(r, "").strip()]
    missing += [f"state {s}" for s in State if not STATE_DESCRIPTIONS.get(s, "").strip()]
    missing += [f"module {dotted} (docstring)" for dotted, doc in modules() if not doc]
    missing += [f"environment {name}" for name, doc in environment_read_directly() if not doc]
    in_help = {e for a in parser_options(parser({})) for e in ENV_IN_HELP.findall(a.help or "")}
    missing += [
        f"environment {name} (no flag's help names it)"
        for name, _ in environment_read_directly(in_parser=True)
        if name not in in_help
    ]
    missing += [  # a group of values (image, metrics, ...) is described by its members
        f"Helm value {key}"
        for key, schema, text, _ in helm_values()
        if not text.strip() and not schema.get("properties")
    ]
    return missing


def on_config(config: Any) -> Any:
    """mkdocs hook: a CRD added to crds/ gets its page in the Reference nav, after the others."""
    for section in config["nav"] or []:
        if isinstance(section, dict) and isinstance(section.get("Reference"), list):
            entries: list[Any] = section["Reference"]
            listed = {v for e in entries if isinstance(e, dict) for v in e.values()}
            last = max(
                (i for i, e in enumerate(entries) if isinstance(e, dict)
                 and any(str(v).startswith("reference/crd-") for v in e.values())),
                default=0,
            )  # fmt: skip
            for crd in crd_documents():
                if crd_page_name(crd) not in listed:
                    last += 1
                    entries.insert(last, {crd["spec"]["names"]["kind"]: crd_page_name(crd)})
    return config


def on_files(files: Any, config: Any) -> Any:
    """mkdocs hook: add the generated pages to the build (nothing is written into docs/)."""
    from mkdocs.structure.files import File

    for path, content in pages().items():
        files.append(File.generated(config, path, content=content))
    return files
