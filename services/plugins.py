"""Plugins: Python code installed by IT that gives case types what configuration cannot say,
as custom functions for conditions and custom rule actions (docs/case-types.md, "Plugins").

A plugin is found through entry points of installed packages only, never uploaded:

- ``caseledger.functions``: ``"geo_risk.score" = "caseledger_geo_risk:score"`` makes
  ``geo_risk.score(fields.postcode)`` usable in a condition;
- ``caseledger.actions``: ``"geo_risk.flag_for_review" = "caseledger_geo_risk:flag"`` makes
  ``{plugin: geo_risk.flag_for_review, with: {...}}`` usable as a rule action.

The part before the dot names the plugin, which a case type declares (``plugins: [geo_risk]``).
Signatures come from the callables' annotations (``def score(postcode: str) -> float``).

**Sandboxed by contract.** A plugin runs in a worker of the sandbox pool (another process,
within :data:`PLUGIN_BUDGET_MS`), so it never sees the store, the aggregate or our I/O
handles. A function gets plain arguments and returns a plain value; an action gets the case's
facts (as rules see them) and its ``with`` settings, and returns a list of actions of the
document's vocabulary, each checked like a document's action before any applies. Anything
else (raising, a value that is not plain JSON, a bad action, running out of time) fails the
command with :class:`PluginFailed`, naming the plugin: nothing is stored.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import sys
import threading
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Protocol

import cel

from domain.definition import Action
from domain.errors import BudgetExceeded
from services.expressions import CelCondition, plain
from services.sandbox import shared_pool

GROUPS = {"function": "caseledger.functions", "action": "caseledger.actions"}
"""The entry-point group of each kind of plugin entry."""
PLUGIN_BUDGET_MS = 500
"""The longest one plugin call may run (its first call in a worker includes its import)."""
MAX_PLUGIN_ACTIONS = 20
"""The most actions one plugin action may return."""
_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_RESERVED = ("case", "fields", "event", "actor", "plugin", "with")
_PLAIN_KINDS = "text, a number, true or false, null, a list or a mapping of those"


class PluginFailed(BudgetExceeded):
    """A plugin raised, answered something outside its contract, or ran out of its time: the
    whole command fails and nothing is stored (like a budget overrun, never half-applied)."""

    code = "plugin_failed"


# -- what is installed -----------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    """One argument of a plugin function, or one ``with`` setting of a plugin action."""

    name: str
    type: str
    """The expression type: string, int, double, bool, list, map, timestamp, null or dyn
    (anything); ``?`` at the end when it may also be null."""
    required: bool = True


@dataclass(frozen=True)
class Entry:
    """One function or action a plugin provides."""

    plugin: str
    name: str
    kind: str
    """``function`` or ``action``."""
    target: str
    """Where Python finds it: ``module:attribute``."""
    location: str
    """The folder on ``sys.path`` that holds the package (so a worker finds it too)."""
    params: tuple[Parameter, ...]
    returns: str | None
    doc: str

    @property
    def qualified(self) -> str:
        return f"{self.plugin}.{self.name}"

    @property
    def signature(self) -> str:
        """``geo_risk.score(postcode: string) -> double``."""
        shown = ", ".join(
            f"{p.name}: {p.type}" + ("" if p.required else " = ...") for p in self.params
        )
        result = f" -> {self.returns}" if self.returns else ""
        return f"{self.qualified}({shown}){result}"


@dataclass(frozen=True)
class Plugin:
    """An installed plugin: its functions and actions, and the package that provides it."""

    name: str
    package: str
    version: str
    summary: str
    functions: Mapping[str, Entry] = field(default_factory=dict)
    actions: Mapping[str, Entry] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    """Why some of its entries could not be loaded (they are left out)."""


@dataclass(frozen=True)
class Plugins:
    """The plugins installed in this environment, by name."""

    by_name: Mapping[str, Plugin]

    def problem_with(self, name: str) -> str | None:
        """Why a case type may not declare plugin ``name``, or None."""
        plugin = self.by_name.get(name)
        if plugin is None:
            installed = ", ".join(sorted(self.by_name)) or "none"
            return (
                f"plugin {name!r} is not installed; installed plugins are {installed} "
                "(plugins are Python packages IT installs beside caseledger, see GET /plugins)"
            )
        if plugin.problems and not (plugin.functions or plugin.actions):
            return f"plugin {name!r} cannot be loaded: {'; '.join(plugin.problems)}"
        return None


_scanning = threading.Lock()


@cache
def _scanned() -> Plugins:
    return _scan()


def installed() -> Plugins:
    """The installed plugins, found once per process (see :func:`rescan`)."""
    with _scanning:
        return _scanned()


def rescan() -> Plugins:
    """Look for installed plugins again (after a package was installed or removed)."""
    with _scanning:
        importlib.invalidate_caches()
        _scanned.cache_clear()
        return _scanned()


def _scan() -> Plugins:
    found: dict[str, dict[str, Any]] = {}
    for kind, group in GROUPS.items():
        for point in entry_points(group=group):
            plugin_name, _, entry_name = point.name.partition(".")
            dist = point.dist
            package = dist.metadata["Name"] if dist is not None else "?"
            slot = found.setdefault(
                plugin_name,
                {"packages": {}, "functions": {}, "actions": {}, "problems": []},
            )
            slot["packages"][package] = dist
            where = f"{group} entry point {point.name!r} of package {package}"
            if not (_NAME.fullmatch(plugin_name) and _NAME.fullmatch(entry_name)):
                slot["problems"].append(
                    f"{where}: name it plugin.entry, each lowercase letters, digits and _"
                )
                continue
            try:
                entry = _entry(point, kind, plugin_name, entry_name)
            except Exception as error:  # noqa: BLE001 - a broken plugin is reported, not fatal
                slot["problems"].append(f"{where}: {type(error).__name__}: {error}")
                continue
            slot[f"{kind}s"][entry_name] = entry
    return Plugins({name: _plugin(name, slot) for name, slot in sorted(found.items())})


def _plugin(name: str, slot: dict[str, Any]) -> Plugin:
    problems = list(slot["problems"])
    packages = slot["packages"]
    if name in _RESERVED or not _NAME.fullmatch(name):
        problems.append(f"{name!r} cannot name a plugin: it is reserved or not a valid name")
        slot["functions"], slot["actions"] = {}, {}
    if len(packages) > 1:
        problems.append(f"provided by several packages ({', '.join(sorted(packages))}): keep one")
        slot["functions"], slot["actions"] = {}, {}
    [(package, dist)] = list(packages.items())[:1]
    return Plugin(
        name=name,
        package=package,
        version=dist.version if dist is not None else "?",
        summary=(dist.metadata["Summary"] or "") if dist is not None else "",
        functions=dict(sorted(slot["functions"].items())),
        actions=dict(sorted(slot["actions"].items())),
        problems=tuple(problems),
    )


def _entry(point: EntryPoint, kind: str, plugin: str, name: str) -> Entry:
    target = point.load()
    if not callable(target):
        raise TypeError(f"{point.value} is not a function")
    signature = inspect.signature(target)
    hints = typing.get_type_hints(target)
    params = list(signature.parameters.values())
    if kind == "action":
        if not params or params[0].kind not in _POSITIONAL:
            raise TypeError("an action takes the case's facts as its first argument")
        params = params[1:]
    allowed = (*_POSITIONAL, inspect.Parameter.KEYWORD_ONLY) if kind == "action" else _POSITIONAL
    for param in params:
        if param.kind not in allowed:
            raise TypeError(f"argument {param.name!r}: *args, **kwargs are not supported")
    location = str(Path(str(point.dist.locate_file(""))).resolve()) if point.dist else ""
    return Entry(
        plugin=plugin,
        name=name,
        kind=kind,
        target=point.value,
        location=location,
        params=tuple(
            Parameter(p.name, type_name(hints.get(p.name, Any)), p.default is p.empty)
            for p in params
        ),
        returns=type_name(hints.get("return", Any)) if kind == "function" else None,
        doc=inspect.getdoc(target) or "",
    )


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_TYPES: dict[Any, str] = {
    str: "string", int: "int", float: "double", bool: "bool", list: "list", tuple: "list",
    dict: "map", type(None): "null", Any: "dyn", object: "dyn",
}  # fmt: skip


def type_name(annotation: Any) -> str:
    """The expression type of a Python annotation: ``str`` -> ``string``,
    ``list[str]`` -> ``list``, ``float | None`` -> ``double?``, anything else -> ``dyn``."""
    if annotation in _TYPES:
        return _TYPES[annotation]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in _TYPES:
        return _TYPES[origin]
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return f"{type_name(rest[0])}?" if len(rest) == 1 else "dyn"
    if origin is not None and str(origin) in ("typing.Union", "<class 'types.UnionType'>"):
        return "dyn"
    return "dyn"


# -- case-type documents: declared plugins, conditions, actions --------------------------------


class Checker(Protocol):
    """What a plugin needs from the document checker (``services.case_type_checks.Scope``)."""

    problems: list[str]

    def add(self, path: str, message: str) -> None: ...

    def action(self, path: str, item: Any) -> Action | None: ...


def declared(
    plugins: Plugins, path: str, names: Sequence[str], problems: list[str]
) -> dict[str, Plugin]:
    """The plugins a document declares (``plugins: [geo_risk]``), each installed."""
    chosen = {}
    for index, name in enumerate(names):
        problem = plugins.problem_with(name)
        if problem is not None:
            problems.append(f"{path}[{index}]: {problem}")
        elif name in chosen:
            problems.append(f"{path}[{index}]: {name!r} is listed twice")
        else:
            chosen[name] = plugins.by_name[name]
    return chosen


_CALL = re.compile(r"(?<![\w.])([a-z][a-z0-9_]*)\s*\.\s*([A-Za-z_]\w*)\s*\(")


def calls_in(members: frozenset[tuple[str, str]], source: str) -> set[tuple[str, str]]:
    """The ``plugin.function(`` calls in a CEL source (string literals left out)."""
    from services.expression_limits import STRING  # noqa: PLC0415 - small, leaf module

    bare = re.sub(STRING, '""', source)
    return {(a, b) for a, b in _CALL.findall(bare) if (a, b) in members}


def condition_problems(
    compiled: CelCondition, plugins: Mapping[str, Plugin], installed_now: Plugins
) -> tuple[CelCondition, list[str]]:
    """``compiled`` as a condition that may call the declared ``plugins``, and the problems of
    its plugin calls (an undeclared plugin, a function it does not have)."""
    problems, entries = [], []
    for plugin, name in sorted(calls_in(compiled.members, compiled.source)):
        if plugin in plugins:
            entry = plugins[plugin].functions.get(name)
            if entry is None:
                known = ", ".join(plugins[plugin].functions) or "none"
                problems.append(
                    f"plugin {plugin!r} has no function {name!r}; its functions: {known}"
                )
            else:
                entries.append(entry)
        elif plugin in installed_now.by_name:
            problems.append(
                f"{plugin}.{name} is a plugin function: declare the plugin at the top of the "
                f"case type (plugins: [{plugin}])"
            )
    if not entries:  # the names it calls are reported above, not as unknown facts
        called = {plugin for plugin, _ in calls_in(compiled.members, compiled.source)}
        compiled.names = tuple(n for n in compiled.names if n not in called)
        return compiled, problems
    return PluginCondition(compiled.source, compiled.where, tuple(entries)), problems


class PluginCondition(CelCondition):
    """A CEL condition that calls plugin functions: it always runs in the sandbox pool, within
    :data:`PLUGIN_BUDGET_MS`, and a plugin that fails there fails the command."""

    def __init__(self, source: str, where: str, entries: tuple[Entry, ...]) -> None:
        super().__init__(source, where)
        self.entries = entries
        roots = {e.plugin for e in entries}
        self.names = tuple(n for n in self.names if n not in roots)
        self.members = frozenset((r, m) for r, m in self.members if r not in roots)
        self._spec = (source, tuple((e.qualified, e.target, e.location) for e in entries))

    def holds(self, facts: Mapping[str, Any]) -> bool:
        known = {n: plain(facts[n]) for n in ("case", "fields", "event", "actor") if n in facts}
        answer = _in_pool(self.where, "plugin_cel", self._spec, known)
        return answer["value"] is True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PluginCondition) and other._spec == self._spec

    def __hash__(self) -> int:
        return hash(self._spec)


@dataclass(frozen=True, eq=False)
class PluginAction:
    """A rule's ``{plugin: geo_risk.flag_for_review, with: {...}}``: calls the plugin with
    the case's facts, and checks what it returns like the document's own actions."""

    entry: Entry
    settings: Mapping[str, Any]
    where: str
    checker: Checker

    def actions(self, facts: Mapping[str, Any]) -> tuple[Action, ...]:
        known = {"facts": plain(facts), "with": dict(self.settings)}
        spec = (self.entry.qualified, self.entry.target, self.entry.location)
        answer = _in_pool(self.where, "plugin_action", spec, known)
        return self._checked(answer["value"])

    def _checked(self, produced: Any) -> tuple[Action, ...]:
        if not isinstance(produced, list):
            raise self._failed(f"returned {_kind(produced)}, not a list of actions")
        if len(produced) > MAX_PLUGIN_ACTIONS:
            raise self._failed(
                f"returned {len(produced)} actions; the limit is {MAX_PLUGIN_ACTIONS}"
            )
        checker = _fresh(self.checker)
        built = []
        for index, item in enumerate(produced):
            if isinstance(item, Mapping) and "plugin" in item:
                checker.add(f"[{index}]", "a plugin action cannot run another plugin")
                continue
            action = checker.action(f"[{index}]", item)
            if action is not None:
                built.append(action)
        if checker.problems:
            raise self._failed(f"returned actions that are refused: {'; '.join(checker.problems)}")
        return tuple(built)

    def _failed(self, why: str) -> PluginFailed:
        return PluginFailed(f"{self.where} ({self.entry.qualified}) {why}", hint=_HINT)


_HINT = (
    "nothing was stored; the plugin is Python code installed by IT: fix it (GET /plugins "
    "shows its package and version), or take it out of the case type in a new version"
)


def _fresh(checker: Checker) -> Checker:
    """The document checker with an empty problem list (its declarations are shared)."""
    copy = type(checker).__new__(type(checker))
    copy.__dict__.update(checker.__dict__)
    copy.problems = []
    return copy


def action_from(
    checker: Checker,
    plugins: Mapping[str, Plugin],
    installed_now: Plugins,
    path: str,
    item: Mapping[str, Any],
) -> Action | None:
    """A document's ``{plugin: name.action, with: {...}}``, or None with its problems."""
    for key in item:
        if key not in ("plugin", "with"):
            checker.add(f"{path}.{key}", "unknown key; a plugin action has plugin and with")
    name, settings = item.get("plugin"), item.get("with", {})
    if not isinstance(name, str) or "." not in name:
        checker.add(f"{path}.plugin", "name the plugin's action as plugin.action (geo_risk.flag)")
        return None
    if not isinstance(settings, Mapping):
        checker.add(f"{path}.with", "must be a mapping of the action's settings")
        return None
    plugin, _, action = name.partition(".")
    if plugin not in plugins:
        why = installed_now.problem_with(plugin) or f"declare it at the top (plugins: [{plugin}])"
        checker.add(f"{path}.plugin", f"{plugin!r} is not a declared plugin: {why}")
        return None
    entry = plugins[plugin].actions.get(action)
    if entry is None:
        known = ", ".join(plugins[plugin].actions) or "none"
        checker.add(
            f"{path}.plugin", f"plugin {plugin!r} has no action {action!r}; its actions: {known}"
        )
        return None
    before = len(checker.problems)
    expected = {p.name: p for p in entry.params}
    for key in settings:
        if key not in expected:
            checker.add(f"{path}.with.{key}", f"not a setting of {name}; {entry.signature}")
    for param in entry.params:
        if param.required and param.name not in settings:
            checker.add(f"{path}.with", f"{param.name} is required; {entry.signature}")
    problem = _unplain(settings)
    if problem:
        checker.add(f"{path}.with", problem)
    if len(checker.problems) > before:
        return None
    call = PluginAction(entry, dict(settings), f"the plugin action at {path}", checker)
    return Action("plugin", {"plugin": name, "with": dict(settings), "call": call})


def _unplain(value: Any) -> str | None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return f"must hold plain values only ({_PLAIN_KINDS})"
    return None


def _kind(value: Any) -> str:
    return "nothing (None)" if value is None else f"a value of type {type(value).__name__}"


# -- running a plugin, in the pool ----------------------------------------------------------


def _in_pool(where: str, kind: str, spec: Any, known: dict[str, Any]) -> dict[str, Any]:
    try:
        answer: dict[str, Any] = shared_pool().run(kind, spec, known, budget_ms=PLUGIN_BUDGET_MS)
    except PluginFailed:
        raise
    except BudgetExceeded as error:
        raise PluginFailed(f"{where} {error.message}", hint=_HINT) from None
    if "error" in answer:
        raise PluginFailed(f"{where}: {answer['error']}", hint=_HINT)
    return answer


def run_here(kind: str, spec: Any, known: dict[str, Any]) -> Any:
    """In a sandbox worker: a plugin task (``plugin_cel``, ``plugin_action``), or else the
    expression task of :func:`services.expressions.run_here`. Never raises for a plugin's
    fault: the answer is ``{"value": ...}`` or ``{"error": why}``, in plain JSON."""
    if kind == "plugin_cel":
        return _run_condition(spec, known)
    if kind == "plugin_action":
        return _run_action(spec, known)
    from services.expressions import run_here as expression  # noqa: PLC0415

    return expression(kind, spec, known)


_loaded: dict[tuple[str, str], Callable[..., Any]] = {}


def _load(target: str, location: str) -> Callable[..., Any]:
    key = (target, location)
    if key not in _loaded:
        if location and location not in sys.path:
            sys.path.append(location)
        loaded = EntryPoint("plugin", target, "caseledger").load()
        _loaded[key] = loaded
    return _loaded[key]


def _run_condition(spec: Any, known: dict[str, Any]) -> dict[str, Any]:
    source, entries = spec
    failures: list[str] = []
    functions = {}
    for qualified, target, location in entries:
        try:
            function = _load(target, location)
        except BaseException as error:  # noqa: BLE001 - the plugin's fault, reported
            return {"error": f"plugin function {qualified} could not be loaded: {_said(error)}"}
        functions[qualified] = _guarded(qualified, function, failures)
    try:
        value = cel.compile(source).execute(cel.Context(known, functions))
    except (RuntimeError, LookupError, TypeError, ValueError, ArithmeticError):
        value = False  # as any condition that cannot be evaluated
    if failures:
        return {"error": failures[0]}
    return {"value": value is True}


def _guarded(
    qualified: str, function: Callable[..., Any], failures: list[str]
) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        try:
            result = function(*(plain(a) for a in args))
        except BaseException as error:  # noqa: BLE001 - the plugin's fault, reported
            failures.append(f"plugin function {qualified} raised {_said(error)}")
            raise RuntimeError(qualified) from None
        problem = _unplain(result)
        if problem is not None:
            failures.append(f"plugin function {qualified} returned {_kind(result)}: {problem}")
            raise RuntimeError(qualified)
        return result

    return call


def _run_action(spec: Any, known: dict[str, Any]) -> dict[str, Any]:
    qualified, target, location = spec
    try:
        action = _load(target, location)
        produced = action(known["facts"], **known["with"])
    except BaseException as error:  # noqa: BLE001 - the plugin's fault, reported
        return {"error": f"plugin action {qualified} raised {_said(error)}"}
    problem = _unplain(produced)
    if problem is not None:
        return {"error": f"plugin action {qualified} returned {_kind(produced)}: {problem}"}
    return {"value": produced}


def _said(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text[:300]}" if text else type(error).__name__
