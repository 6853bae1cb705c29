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

import contextlib
import errno
import os
import sys
import tempfile
import time
import traceback
from typing import NoReturn

import click

import nasc
from nasc.diagnostics import NascError, clip, printable
from nasc.fileio import OutputError, describe_os_error

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


# OS errors that say where output went is full or broken, not that nasc is: standard output
# redirected to a full disk, past `ulimit -f`, onto a dead device.
WRITE_FAILURES = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO, errno.EROFS}


class NascGroup(click.Group):
    """Turns whatever escapes a command into one line and the contract's exit status: a user never
    sees a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except NascError as error:
            report(error)
            sys.exit(_input_is_wrong(ctx))
        except OutputError as error:
            fail(str(error), _input_is_wrong(ctx))
        except (click.exceptions.Exit, click.UsageError, click.Abort, SystemExit):
            raise
        except click.ClickException as error:  # a command's own refusal, said like every other error
            fail(error.format_message(), error.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:  # the reader went away (`nasc diff a b | head`): stop quietly
            _discard_standard_output()
            sys.exit(_input_is_wrong(ctx))
        except OSError as error:
            if error.errno not in WRITE_FAILURES:
                _internal_error(error)
            _discard_standard_output()
            where = str(error.filename) if error.filename else "standard output"
            fail(f"cannot write {where}: {describe_os_error(error)}", _input_is_wrong(ctx))
        except Exception as error:  # a bug in nasc: one line, the traceback in a file
            _internal_error(error)


def _input_is_wrong(ctx: click.Context) -> int:
    """The exit status for input that is wrong: 1, but 2 for `nasc diff`, whose 1 means "different"."""
    return 2 if ctx.invoked_subcommand == "diff" else 1


def fail(message: str, status: int = 1) -> NoReturn:
    """One line on standard error, `nasc: error: …`, made inert for the terminal; exit `status`."""
    with contextlib.suppress(OSError):
        click.echo(f"nasc: error: {clip(printable(message, keep_newlines=False))}", err=True)
    sys.exit(status)


def _internal_error(error: Exception) -> NoReturn:
    if os.environ.get("NASC_DEBUG"):
        raise error
    where = save_traceback()
    message = printable(str(error).splitlines()[0] if str(error) else "", keep_newlines=False)
    with contextlib.suppress(OSError):
        click.echo(
            f"nasc: internal error: {type(error).__name__}: {clip(message)} "
            f"(traceback saved to {where}; please report it)",
            err=True,
        )
    sys.exit(3)


def _discard_standard_output() -> None:
    """What is still buffered for standard output goes nowhere, so that Python's own flush at exit
    does not fail a second time (and turn the exit status into 120)."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


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
