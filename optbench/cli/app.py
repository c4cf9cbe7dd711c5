"""The root typer app; each area adds its commands from its own module in optbench/cli/."""

import typer

app = typer.Typer(
    name="optbench",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="optbench: the Modded-NanoGPT Optimization Benchmark, its optimizer zoo, statistics, workspace and submissions.",
)


@app.callback()
def _root() -> None:
    """optbench: the Modded-NanoGPT Optimization Benchmark, its optimizer zoo, statistics, workspace and submissions."""
