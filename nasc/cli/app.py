"""The `nasc` group: the error boundary every command runs inside, and the exit-status contract.

    0  success
    1  the input is wrong: diagnostics, a missing or unreadable file, a bad checkpoint, an output
       that may not be written
    2  usage: an unknown option or a bad value
    3  a bug in nasc: one line saying where the traceback was saved
  130  interrupted (Ctrl-C or SIGTERM), after saving what can be resumed

`nasc diff` alone follows diff(1): 0 the same, 1 different, 2 trouble.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback

import click

import nasc
from nasc.diagnostics import NascError, printable
from nasc.fileio import OutputError

EXIT_STATUS_HELP = (
    "\b\nExit status: 0 success, 1 the input is wrong, 2 usage error, 3 a bug in nasc (the traceback is "
    "saved to a file it names), 130 interrupted."
)


def report(error: NascError) -> None:
    click.echo(error.render(), err=True)


def save_traceback() -> str:
    """Write the current exception's traceback to a file in the temporary directory; its path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = os.path.join(tempfile.gettempdir(), f"nasc-crash-{stamp}-{os.getpid()}.txt")
    try:
        with open(path, "w", encoding="utf-8", errors="backslashreplace") as handle:
            handle.write(f"nasc {nasc.__version__}, python {sys.version.split()[0]}\n")
            handle.write(f"argv: {sys.argv!r}\n\n")
            handle.write(traceback.format_exc())
    except OSError:
        return "(could not be saved; set NASC_DEBUG=1 to see it)"
    return path


class NascGroup(click.Group):
    """Turns whatever escapes a command into one line and the contract's exit status: a user never
    sees a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except NascError as error:
            report(error)
            sys.exit(1)
        except OutputError as error:
            click.echo(f"nasc: error: {printable(str(error), keep_newlines=False)}", err=True)
            sys.exit(1)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:  # the reader went away (`nasc diff a b | head`): stop quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(1)
        except Exception as error:  # a bug in nasc: one line, the traceback in a file
            if os.environ.get("NASC_DEBUG"):
                raise
            where = save_traceback()
            message = printable(str(error).splitlines()[0] if str(error) else "", keep_newlines=False)
            click.echo(
                f"nasc: internal error: {type(error).__name__}: {message} "
                f"(traceback saved to {where}; please report it)",
                err=True,
            )
            sys.exit(3)


@click.group(cls=NascGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(nasc.__version__, prog_name="nasc")
def main() -> None:
    """nasc — compile neural-architecture cells (.cell files) into PyTorch and ONNX.

    \b
    Exit status: 0 success, 1 the input is wrong, 2 usage error, 3 a bug in nasc
    (the traceback is saved to a file it names), 130 interrupted. `nasc diff`
    follows diff(1): 0 same, 1 different, 2 trouble.

    \b
    Example:
      nasc check genotypes/nasnet_a.cell
    """
