"""`optbench optimizers`, `optbench tracks`, `optbench recipes`: what optbench knows, as tables readable anywhere.

No name, number or path in these tables is ever cut or split: in a terminal the table is printed when it fits the
width (only prose columns, such as a reference, wrap), else each row becomes a block of `column: value` lines; in a
pipe or a file every row is one whole line.
"""

from __future__ import annotations

import typer
from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from optbench.cli.app import app


def show_table(headers: list[str], rows: list[list[str]], *, prose: tuple[str, ...] = (),
               numbers: tuple[str, ...] = (), console: Console | None = None) -> None:
    """Print rows under headers without cutting a cell (see the module docstring). `prose` columns may wrap at
    spaces in a terminal; `numbers` are right-aligned."""
    console = console or Console()
    table = Table(*headers)
    for col in table.columns:
        col.no_wrap = col.header not in prose
        col.overflow = "fold"
        if col.header in numbers:
            col.justify = "right"
    for r in rows:
        table.add_row(*r)
    if not console.is_terminal:  # a pipe or a file: whole rows, one per line, at the table's natural width
        table.box, table.show_edge = box.SIMPLE_HEAD, False
        width = Measurement.get(console, console.options.update(width=100_000), table).maximum
        Console(file=console.file, width=max(width, 1), no_color=True).print(table, crop=False)
        return
    if _min_width(headers, rows, prose) <= console.width:
        console.print(table)
        return
    label = max(len(h) for h in headers[1:]) if len(headers) > 1 else 0
    for r in rows:  # too narrow for the table: one block per row, every value whole on its own line
        console.print(r[0], style="bold", markup=False, highlight=False, soft_wrap=True)
        for h, v in zip(headers[1:], r[1:]):
            if v:
                console.print(f"  {h.ljust(label)}  {v}", markup=False, highlight=False, soft_wrap=True)


def _min_width(headers: list[str], rows: list[list[str]], prose: tuple[str, ...]) -> int:
    """The narrowest the table can be with every cell whole: other columns at their widest cell, prose columns at
    their longest word, plus the borders and padding (3 per column, 1 more for the left edge)."""
    total = 1
    for i, h in enumerate(headers):
        cells = [h] + [r[i] for r in rows]
        if h in prose:
            total += max(cell_len(w) for c in cells for w in (c.split() or [""]))
        else:
            total += max(cell_len(c) for c in cells)
        total += 3
    return total


@app.command("optimizers")
def optimizers_cmd(
    name: str = typer.Argument(None, help="show one optimizer's defaults and reference"),
    markdown: bool = typer.Option(False, "--markdown", help="print the full documented list as markdown"),
) -> None:
    """List the optimizer zoo (name, family, matrix-only, reference)."""
    from optbench import optim

    if markdown:
        print(zoo_markdown(), end="")
        return
    console = Console()
    if name:
        i = optim.info(name)
        console.print(f"[bold]{i.name}[/bold] ({i.cls.__module__}.{i.cls.__name__})", soft_wrap=True)
        console.print(f"reference: {i.reference}", markup=False, soft_wrap=True)
        if i.notes:
            console.print(f"notes: {i.notes}", markup=False, soft_wrap=True)
        for k, v in i.defaults().items():
            console.print(f"  {k} = {v!r}", markup=False, soft_wrap=True)
        return
    rows = []
    for n in optim.names():
        i = optim.info(n)
        rows.append([n, i.family, "yes" if i.matrix_only else "", i.reference])
    show_table(["name", "family", "matrix-only", "reference"], rows, prose=("reference",), console=console)


@app.command("tracks")
def tracks_cmd() -> None:
    """Each track's fixed fields, parameter count, target, and the tracks whose val losses compare with its own."""
    import torch

    from optbench.tracks import TRACK_NAMES, comparable_tracks, get_track

    rows = []
    for name in TRACK_NAMES:
        t = get_track(name)
        with torch.device("meta"):
            n = sum(p.numel() for p in t.build_model().parameters())
        cfg = t.model_config
        val = f"{t.val_tokens:,}" + (f" ({t.val_row_tokens:,}/row)" if t.val_row_tokens != t.seq_len else "")
        rows.append([name, f"{cfg.num_layers}x{cfg.model_dim} v{cfg.vocab_size}", f"{n:,}", f"{t.batch_tokens:,}",
                     f"{t.seq_len:,}", f"{t.target}", val, str(t.train_steps),
                     f"{t.eval_every}/{t.eval_every_late} after {t.late_frac:.0%}", t.data,
                     ", ".join(comparable_tracks(t)) or "none"])
    show_table(["track", "model", "params", "tokens/step", "seq", "target", "val tokens", "steps", "eval", "data",
                "val loss comparable with"], rows, prose=("val loss comparable with",),
               numbers=("params", "tokens/step", "seq", "target", "steps"))


@app.command("recipes")
def recipes_cmd(
    parts: str = typer.Option(None, "--parts", help="list this recipe's parts (name or .toml) with knobs and sources"),
    uses: str = typer.Option(None, "--uses", help="only the recipes that use this part (e.g. hyperball)"),
) -> None:
    """The bundled recipes and the published results they cite; --parts R: recipe R's parts; --uses P: the
    recipes (published entries) that use part P."""
    from optbench.optim.recipe import load_recipe, recipe_names

    if parts is not None:
        from optbench.optim.parts.catalog import describe

        r = load_recipe(parts)
        rows = [[d["part"], d["stage"], d["knobs"], d["summary"], d["source"]] for d in describe(r)]
        if not rows:
            Console().print(f"{r.name}: no parts (optimizer {r.optimizer} as a whole)", markup=False)
            return
        show_table(["part", "stage", "knobs (recipe value [default])", "what", "source"], rows,
                   prose=("knobs (recipe value [default])", "what", "source"))
        return
    if uses is not None:
        from optbench.optim.parts.catalog import require

        require(uses, "--uses")
    rows = []
    for n in recipe_names():
        r = load_recipe(n)
        if uses is not None and not r.uses_part(uses):
            continue
        pub = f"{r.published.steps:,}" if r.published and r.published.steps else ""
        rows.append([n, r.optimizer, r.track or "", pub, r.source])
    show_table(["recipe", "optimizer", "track", "published steps", "source"], rows, numbers=("published steps",))


def zoo_markdown() -> str:
    """docs/optimizers.md: every registered optimizer with its reference, notes and constructor defaults."""
    from optbench import optim

    out = ["# The optimizer zoo", "",
           "Generated by `optbench optimizers --markdown` from the registry (`optbench/optim`). Each optimizer is a",
           "`torch.optim.Optimizer`; `from optbench.optim import get; get(NAME)` or import the class directly.",
           "Conformance against the official implementations: `tests/optim/test_conformance_*.py`.", "",
           "| name | class | family | matrix-only | reference |", "|---|---|---|---|---|"]
    for n in optim.names():
        i = optim.info(n)
        if i.family == "test":
            continue
        out.append(f"| `{n}` | `{i.cls.__module__}.{i.cls.__name__}` | {i.family} | "
                   f"{'yes' if i.matrix_only else ''} | {i.reference} |")
    for n in optim.names():
        i = optim.info(n)
        if i.family == "test":
            continue
        out += ["", f"## `{n}`", "", f"- class: `{i.cls.__module__}.{i.cls.__name__}`", f"- reference: {i.reference}"]
        if i.aliases:
            out.append(f"- aliases: {', '.join(i.aliases)}")
        if i.notes:
            out.append(f"- notes: {i.notes}")
        out += ["", "| hyperparameter | default |", "|---|---|"]
        out += [f"| `{k}` | `{v!r}` |" for k, v in i.defaults().items()]
    return "\n".join(out) + "\n"
