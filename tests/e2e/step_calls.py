"""Every AWS call each function's code can make, read from the code's syntax trees: the boto calls in the
adapters, and which of them a step's logic, the engine around it and the reconciler can reach.

What counts as a call: `aws.client("svc", ...).<method>` (called or handed to the adapter's error wrapper),
`<client>.get_paginator("<method>")`, a client kept in a local name or returned by a property (also
through an adapter outside its class: `rds._client.<method>`), and
`self._call("<method>", ...)` into a method that dispatches with `getattr(aws.client("svc"), name)`. What a
function reaches: the functions it names (in its module, or imported), the methods of the adapters it names
through a receiver (`ctx.target_rds`, `rds`, `...store`, `...publisher`, an adapter module's name or a
class it builds). The engine is taken module by module (every function of every engine module the handler,
or the reconciler, imports), which can only add calls.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "functions"
# Receivers the code names adapters by: the RDS adapter (ctx.target_rds / source_rds, a local `rds`), the
# state store (services.store, self.store) and the event publisher.
RECEIVERS = {
    "target_rds": "functions.rds:RdsAdapter",
    "source_rds": "functions.rds:RdsAdapter",
    "rds": "functions.rds:RdsAdapter",
    "store": "functions.state:DynamoStateStore",
    "_store": "functions.state:DynamoStateStore",
    "publisher": "functions.bus:EventPublisher",
    "_publisher": "functions.bus:EventPublisher",
}
NOT_CALLS = frozenset({"meta", "exceptions", "get_paginator", "get_waiter", "can_paginate"})


@dataclass
class Function:
    """One function or method: the boto calls it makes itself, and the functions it names."""

    key: str
    calls: set[tuple[str, str]] = field(default_factory=set)
    refs: set[str] = field(default_factory=set)


@dataclass
class Module:
    name: str
    tree: ast.Module
    functions: dict[str, ast.FunctionDef] = field(default_factory=dict)  # qualname -> node
    classes: dict[str, set[str]] = field(default_factory=dict)  # class -> its methods
    imports: dict[str, str] = field(default_factory=dict)  # local name -> module or module:name
    runtime_imports: set[str] = field(default_factory=set)  # modules imported outside TYPE_CHECKING


def module_path(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.exists():
            return path
    return None


def _imports(module: Module) -> None:
    guarded = {
        id(inner)
        for node in ast.walk(module.tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    for node in ast.walk(module.tree):
        if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith(PACKAGE):
            continue
        for alias in node.names:
            local = alias.asname or alias.name
            submodule = f"{node.module}.{alias.name}"
            target = submodule if module_path(submodule) else f"{node.module}:{alias.name}"
            module.imports[local] = target
            if id(node) not in guarded:
                module.runtime_imports.add(target.partition(":")[0])


@cache
def parse(name: str) -> Module:
    path = module_path(name)
    assert path is not None, name
    module = Module(name, ast.parse(path.read_text()))
    _imports(module)
    for node in module.tree.body:
        if isinstance(node, ast.FunctionDef):
            module.functions[node.name] = node
        elif isinstance(node, ast.ClassDef):
            methods = [item for item in node.body if isinstance(item, ast.FunctionDef)]
            module.classes[node.name] = {item.name for item in methods}
            module.functions.update({f"{node.name}.{item.name}": item for item in methods})
    return module


def all_modules() -> list[str]:
    return sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in (ROOT / PACKAGE).rglob("*.py")
    )


def _client_service(node: ast.AST, module: Module) -> str | None:
    """`aws.client("svc", ...)` -> "svc"."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "client"
        and isinstance(node.func.value, ast.Name)
        and module.imports.get(node.func.value.id) == "functions.aws"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ):
        return str(node.args[0].value)
    return None


def _returned_client(function: ast.FunctionDef, module: Module) -> str | None:
    """The service of a property returning `aws.client("svc", ...)`."""
    for node in ast.walk(function):
        if isinstance(node, ast.Return) and node.value is not None:
            return _client_service(node.value, module)
    return None


def _dispatched_client(function: ast.FunctionDef, module: Module) -> str | None:
    """The service of a method calling `getattr(aws.client("svc", ...), <its argument>)`."""
    for node in ast.walk(function):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr":
            return _client_service(node.args[0], module)
    return None


class Walker:
    """What one function of `module` (in class `owner`, if a method) calls and names."""

    def __init__(self, module: Module, owner: str | None, found: Function) -> None:
        self.module, self.owner, self.found = module, owner, found
        self.local: dict[str, tuple[str, str]] = {}  # name -> ("client", svc) | ("instance", class key)
        self.consumed: set[int] = set()  # the aws.client(...) nodes accounted for

    # -- what an expression is ----------------------------------------------------------------------
    def kind(self, node: ast.AST) -> tuple[str, str] | None:
        service = _client_service(node, self.module)
        if service:
            self.consumed.add(id(node))
            return ("client", service)
        if isinstance(node, ast.Call):
            symbol = self.symbol(node.func)
            return ("instance", symbol) if symbol and self.is_class(symbol) else None
        if isinstance(node, ast.Name):
            if node.id in self.local:
                return self.local[node.id]
            if node.id in RECEIVERS:
                return ("instance", RECEIVERS[node.id])
            target = self.module.imports.get(node.id)
            return ("module", target) if target and ":" not in target else None
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "self" and self.owner:
                method = self.module.functions.get(f"{self.owner}.{node.attr}")
                service = _returned_client(method, self.module) if method else None
                if service:
                    return ("client", service)
            if node.attr in RECEIVERS:
                return ("instance", RECEIVERS[node.attr])
        return None

    def symbol(self, node: ast.AST) -> str | None:
        """The module:name a Name or module.attribute refers to, when it is one of ours."""
        if isinstance(node, ast.Name):
            if node.id in self.module.imports:
                return resolve(self.module.imports[node.id])
            if node.id in self.module.functions or node.id in self.module.classes:
                return f"{self.module.name}:{node.id}"
        if isinstance(node, ast.Attribute):
            kind = self.kind(node.value)
            if kind and kind[0] == "module":
                return resolve(f"{kind[1]}:{node.attr}")
        return None

    @staticmethod
    def is_class(symbol: str) -> bool:
        name, _, attribute = symbol.partition(":")
        return module_path(name) is not None and attribute in parse(name).classes

    # -- the walk -----------------------------------------------------------------------------------
    def walk(self, function: ast.FunctionDef) -> None:
        for node in ast.walk(function):
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                kind = self.kind(node.value)
                if kind and kind[0] != "module":
                    self.local[node.targets[0].id] = kind
        for node in ast.walk(function):
            self.visit(node)

    def visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.Call):
            self.visit_call(node)
        elif isinstance(node, ast.Attribute):
            self.visit_attribute(node)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            symbol = self.symbol(node)
            if symbol:
                self.found.refs.add(symbol)

    def visit_call(self, node: ast.Call) -> None:
        func = node.func
        if not isinstance(func, ast.Attribute) or not node.args or not isinstance(node.args[0], ast.Constant):
            return
        kind = self.kind(func.value)
        if func.attr == "get_paginator" and kind and kind[0] == "client":
            self.found.calls.add((kind[1], str(node.args[0].value)))
        if isinstance(func.value, ast.Name) and func.value.id == "self" and self.owner:
            method = self.module.functions.get(f"{self.owner}.{func.attr}")
            service = _dispatched_client(method, self.module) if method else None
            if service:
                self.found.calls.add((service, str(node.args[0].value)))

    def visit_attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.value, ast.Name) and node.value.id == "self" and self.owner:
            if f"{self.owner}.{node.attr}" in self.module.functions:
                self.found.refs.add(f"{self.module.name}:{self.owner}.{node.attr}")
            return
        kind = self.kind(node.value)
        if kind is None:
            return
        if kind[0] == "client" and node.attr not in NOT_CALLS:
            self.found.calls.add((kind[1], node.attr))
        elif kind[0] == "instance":
            name, _, cls = kind[1].partition(":")
            if node.attr in parse(name).classes.get(cls, set()):
                self.found.refs.add(f"{kind[1]}.{node.attr}")
        elif kind[0] == "module":
            symbol = self.symbol(node)
            if symbol:
                self.found.refs.add(symbol)


def resolve(target: str) -> str | None:
    """module:name as defined (following re-exports), None when it is not a function or class of ours."""
    name, _, attribute = target.partition(":")
    if module_path(name) is None:
        return None
    module = parse(name)
    if attribute in module.functions or attribute in module.classes:
        return target
    if attribute in module.imports:
        return resolve(module.imports[attribute])
    return None


@cache
def inventory() -> dict[str, Function]:
    """Every function of the package, by module:qualname."""
    found: dict[str, Function] = {}
    for name in all_modules():
        module = parse(name)
        for qualname, node in module.functions.items():
            owner = qualname.split(".")[0] if "." in qualname else None
            function = Function(f"{name}:{qualname}")
            Walker(module, owner, function).walk(node)
            found[function.key] = function
    return found


def unaccounted_clients() -> list[str]:
    """aws.client(...) uses whose calls the walk could not tell (a client it would miss)."""
    missing = []
    for name in all_modules():
        module = parse(name)
        for qualname, node in module.functions.items():
            owner = qualname.split(".")[0] if "." in qualname else None
            walker = Walker(module, owner, Function(qualname))
            walker.walk(node)
            method = module.functions[qualname]
            if _returned_client(method, module) or _dispatched_client(method, module):
                continue  # a property or a dispatcher: its callers' calls are counted
            for inner in ast.walk(node):
                if _client_service(inner, module) and id(inner) not in walker.consumed:
                    missing.append(f"{name}:{qualname} line {inner.lineno}")
    return missing


def reached(entries: Iterable[str]) -> Iterator[Function]:
    """Every function the entries reach, themselves included."""
    functions = inventory()
    seen: set[str] = set()
    todo = list(entries)
    while todo:
        key = todo.pop()
        if key in seen or key not in functions:
            continue  # a class named (built, not called) or a function of another package
        seen.add(key)
        yield functions[key]
        todo.extend(functions[key].refs)


def module_functions(names: Iterable[str]) -> list[str]:
    return [f"{name}:{qualname}" for name in names for qualname in parse(name).functions]


def engine_modules(entry: str) -> list[str]:
    """`entry` and every engine module it imports, directly or through another engine module."""
    found, todo = [], [entry]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.append(name)
        todo.extend(m for m in parse(name).runtime_imports if m.startswith(f"{PACKAGE}.engine"))
    return sorted(found)


def step_logic(step: str) -> list[str]:
    """The step's logic, and any other logic (on_rejected), as its handler module hands them to make_handler."""
    module = parse(f"{PACKAGE}.{step}")
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "make_handler":
            given = [
                node.args[1],
                *(keyword.value for keyword in node.keywords if keyword.arg == "on_rejected"),
            ]
            assert all(isinstance(logic, ast.Name) for logic in given), step
            found = [resolve(module.imports[logic.id]) for logic in given]  # type: ignore[attr-defined]
            assert all(found), step
            return [name for name in found if name]
    raise AssertionError(f"functions/{step}.py builds no handler")


def calls_of(entries: Iterable[str]) -> dict[tuple[str, str], set[str]]:
    """(service, boto method) -> the functions making it, for everything `entries` reach."""
    found: dict[tuple[str, str], set[str]] = {}
    for function in reached(entries):
        for call in function.calls:
            found.setdefault(call, set()).add(function.key)
    return found
