"""Ledger commands."""

import typer

ledger_app = typer.Typer(help="The access ledger.", no_args_is_help=True)
