"""Module sources for a single-file script: each module's body without its imports, the imports collected, the
optbench modules it imports from inlined first, and no top-level name defined twice."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import sys
import textwrap

from optbench.errors import OptbenchError

_STRIPPED_MODULES = ("optbench.optim.registry",)  # imported only for register(); dropped with the calls


@dataclasses.dataclass
class Inlined:
    name: str  # module name
    body: str  # source without imports / register calls / __all__
    imports: list[str]  # non-optbench import statements (source text), in order
    deps: list[str]  # optbench modules it imports from
    aliases: list[str]  # "local = imported" lines for `from optbench.x import a as local`
    defined: set[str]  # top-level names the body binds
    part: str = ""  # one function of the module (inline_function), else the whole module

    @property
    def path(self) -> str:
        return self.name.replace(".", "/") + ".py" + (f" ({self.part})" if self.part else "")

    def block(self, indent: str = "") -> str:
        """The body under a `# ---- inlined from PATH ----` line (and its alias lines), indented."""
        text = f"# ---- inlined from {self.path} ----\n{self.body}\n" + "".join(a + "\n" for a in self.aliases)
        return textwrap.indent(text, indent)


def _is_optbench(mod: str | None) -> bool:
    return bool(mod) and (mod == "optbench" or mod.startswith("optbench."))


def inline_module(modname: str, drop: tuple[str, ...] = ()) -> Inlined:
    """A module's source split into its imports and its body (optbench imports, register() calls, __all__ and
    the top-level definitions named in `drop` removed)."""
    src = inspect.getsource(importlib.import_module(modname))
    tree = ast.parse(src)
    lines = src.splitlines()
    remove: list[tuple[int, int]] = []
    imports, deps, aliases, defined = [], [], [], set()
    for node in tree.body:
        span = (node.lineno, node.end_lineno)
        if isinstance(node, ast.Import):
            if any(_is_optbench(a.name) for a in node.names):
                raise OptbenchError(f"export: {modname}: `import optbench...` is not supported for inlining; "
                                    f"use `from optbench.x import name`")
            imports.append(ast.get_source_segment(src, node))
            remove.append(span)
        elif isinstance(node, ast.ImportFrom):
            if node.module == "__future__":
                remove.append(span)
            elif node.level:
                raise OptbenchError(f"export: {modname}: relative imports are not supported for inlining")
            elif _is_optbench(node.module):
                if node.module not in _STRIPPED_MODULES:
                    deps.append(node.module)
                    aliases += [f"{a.asname} = {a.name}" for a in node.names if a.asname and a.asname != a.name]
                remove.append(span)
            else:
                imports.append(ast.get_source_segment(src, node))
                remove.append(span)
        elif (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
              and isinstance(node.value.func, ast.Name) and node.value.func.id == "register"):
            remove.append(span)
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__"
                                                  for t in node.targets):
            remove.append(span)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in drop:
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            remove.append((first, node.end_lineno))
        else:
            defined.update(bound_names(node))
    keep = [True] * len(lines)
    for a, b in remove:
        for i in range(a - 1, b):
            keep[i] = False
    body = _squeeze_blank("\n".join(ln for ln, k in zip(lines, keep) if k))
    return Inlined(modname, body, imports, deps, aliases, defined)


def inline_function(modname: str, name: str) -> Inlined:
    """One top-level function of a module, by its source (its imports are the module's: inline that too)."""
    src = inspect.getsource(getattr(importlib.import_module(modname), name))
    return Inlined(modname, src.rstrip("\n"), [], [], [], {name}, part=name)


def bound_names(node: ast.stmt) -> list[str]:
    """Names a statement binds in the scope it runs in (compound statements: their bodies too, not functions')."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return [a.asname or a.name.split(".")[0] for a in node.names]
    targets: list[ast.AST] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.For, ast.AsyncFor)):
        targets = [node.target]
    elif isinstance(node, (ast.With, ast.AsyncWith)):
        targets = [it.optional_vars for it in node.items if it.optional_vars is not None]
    out = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    children = [c for f in ("body", "orelse", "finalbody") for c in getattr(node, f, [])]
    for h in getattr(node, "handlers", []):
        out += [h.name] if h.name else []
        children += h.body
    for child in children:
        out += bound_names(child)
    return out


def _squeeze_blank(text: str) -> str:
    out, blank = [], 0
    for ln in text.strip("\n").splitlines():
        blank = blank + 1 if not ln.strip() else 0
        if blank <= 2:
            out.append(ln.rstrip())
    return "\n".join(out)


def module_closure(roots: list[str]) -> list[Inlined]:
    """The modules to inline for `roots`, dependencies first (depth-first post-order), each once."""
    order: list[Inlined] = []
    done: set[str] = set()

    def visit(name: str, stack: tuple[str, ...]) -> None:
        if name in done:
            return
        if name in stack:
            raise OptbenchError(f"export: circular imports between {' -> '.join(stack + (name,))}")
        m = inline_module(name)
        for d in m.deps:
            visit(d, stack + (name,))
        done.add(name)
        order.append(m)

    for r in roots:
        visit(r, ())
    return order


def check_collisions(mods: list[Inlined], reserved: set[str]) -> None:
    """No top-level name defined by two modules, nor by a module and the script's own code (`reserved`)."""
    owner: dict[str, str] = {}
    for m in mods:
        for n in m.defined:
            if n in owner and owner[n] != m.name:
                raise OptbenchError(f"export: top-level name {n!r} is defined in both {owner[n]} and {m.name}; "
                                    f"the inlined script would silently use one of them")
            if n in reserved:
                raise OptbenchError(f"export: {m.name} defines {n!r}, a name the script itself uses")
            owner[n] = m.name


def merged_imports(mods: list[Inlined], present: str) -> str:
    """The modules' import statements, each once, standard library first; none already in `present`."""
    have = {ln.strip() for ln in present.splitlines()}
    seen: list[str] = []
    for m in mods:
        for s in m.imports:
            if s not in seen and s not in have:
                seen.append(s)

    def is_std(stmt: str) -> bool:
        node = ast.parse(stmt).body[0]
        mod = node.names[0].name if isinstance(node, ast.Import) else node.module
        return mod.split(".")[0] in sys.stdlib_module_names

    return "\n".join([s for s in seen if is_std(s)] + [s for s in seen if not is_std(s)])
