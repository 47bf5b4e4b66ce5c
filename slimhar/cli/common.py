"""What every command group shares: the root group, the one-line user errors, the closing table."""
from __future__ import annotations

import functools
import json

import click


class UserError(click.ClickException):
    """A bad input, told in one line (exit status 1, no traceback)."""


def user_errors(fn):
    """Turn the project's input errors into one clear line and exit status 1 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*a, **kw):
        from slimhar.extras import MissingExtra
        from slimhar.quantize.blob import BlobError
        from slimhar.train.checkpoint import CheckpointError
        from slimhar.train.config import ConfigError
        from slimhar.train.data import DatasetError
        try:
            return fn(*a, **kw)
        except (CheckpointError, ConfigError, DatasetError, BlobError, MissingExtra) as e:
            raise UserError(str(e)) from None
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="slimhar")
def main():
    """slimhar: train every width x resolution subnet of a HAR network together, quantize
    them into one shared-weight blob, and run it on a Cortex-M wearable."""


def summary(rows: list[tuple[str, str]], result: dict, json_path, value_width: int = 0) -> None:
    """A command's closing table (name, value), and its whole result as JSON when asked."""
    w = max(len(k) for k, _ in rows)
    for k, v in rows:
        click.echo(f"  {k:<{w}}  {v:>{value_width}}")
    if json_path:
        with open(json_path, "w") as f:
            json.dump(result, f, indent=1)
