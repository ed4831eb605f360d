"""`mri2pet models list | info | verify`."""

from __future__ import annotations

from typing import Annotated

import typer

from mri2pet_cli.cli.app import app, reports_errors
from mri2pet_cli.cli.common import print_metrics_table
from mri2pet_cli.console import console, err_console

models_app = typer.Typer(
    help="List, describe and verify the registered models and their weights.", no_args_is_help=True
)


app.add_typer(models_app, name="models")


@models_app.command("list")
@reports_errors
def models_list() -> None:
    """The registered models, what they need, and whether weights are installed."""
    from mri2pet_cli.models.registry import get_model_info, model_names
    from mri2pet_cli.models.weights import WeightsError, find_weights

    for name in model_names():
        info = get_model_info(name)
        try:
            weights = str(find_weights(name).weights)
        except WeightsError:
            weights = "none installed"
        age = "age (required)" if info.age_required else ("age (optional)" if info.conditioning == "age" else "none")
        console.print(
            f"[bold]{name}[/]: {info.summary}\n  conditioning: {age}; training: {info.training}; weights: {weights}",
            soft_wrap=True,
        )


@models_app.command("info")
@reports_errors
def models_info(
    name: Annotated[str, typer.Argument(help="Model name, e.g. unet.", metavar="MODEL")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole model card as JSON.")] = False,
) -> None:
    """A model card in brief: version, weights, training data, test metrics, intended use."""
    import json

    from mri2pet_cli.models.registry import get_model_info
    from mri2pet_cli.models.weights import find_weights, read_card

    info = get_model_info(name)
    files = find_weights(name)
    card = read_card(files.card)
    if as_json:
        print(json.dumps(card, indent=2))
        return
    from mri2pet_cli.models.weights import card_summary_lines

    console.print(f"[bold]{name}[/]: {info.summary} (paper: {info.paper})")
    for line in card_summary_lines(card, files):
        console.print(line, soft_wrap=True)
    print_metrics_table(card.get("test_metrics", {}).get("models", {}))
    console.print(f"whole card: mri2pet models info {name} --json ({files.card})")


@models_app.command("verify")
@reports_errors
def models_verify() -> None:
    """Re-hash every weights file and compare with its model card."""
    from mri2pet_cli.models.weights import verify_all

    rows = verify_all()
    for name, ok, message in rows:
        (console if ok else err_console).print(f"{'ok ' if ok else 'BAD'} {name}: {message}", soft_wrap=True)
    if not rows:
        console.print("no weights installed")
    if any(not ok for _, ok, _ in rows):
        raise typer.Exit(1)
