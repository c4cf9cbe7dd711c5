"""`optbench optimizers`: the zoo's registry as a table."""

import typer
from rich.console import Console
from rich.table import Table

from optbench.cli.app import app


@app.command("optimizers")
def optimizers_cmd(
    name: str = typer.Argument(None, help="show one optimizer's defaults and reference"),
) -> None:
    """List the optimizer zoo (name, family, matrix-only, reference)."""
    from optbench import optim

    console = Console()
    if name:
        i = optim.info(name)
        console.print(f"[bold]{i.name}[/bold] ({i.cls.__module__}.{i.cls.__name__})")
        console.print(f"reference: {i.reference}")
        if i.notes:
            console.print(f"notes: {i.notes}")
        for k, v in i.defaults().items():
            console.print(f"  {k} = {v!r}")
        return
    table = Table("name", "family", "matrix-only", "reference")
    for n in optim.names():
        i = optim.info(n)
        table.add_row(n, i.family, "yes" if i.matrix_only else "", i.reference)
    console.print(table)
