"""The `nasc` command line: one group (nasc/cli/app.py: the error boundary and the exit-status
contract) and a module per family of commands. Messages are for people: no traceback, ever."""

from __future__ import annotations

from nasc.cli.app import main
from nasc.cli.bench import bench_group
from nasc.cli.build import compile_command, export, show, stats
from nasc.cli.interchange import import_group
from nasc.cli.review import diff_command, viz
from nasc.cli.search import search, top_command
from nasc.cli.source import check, fmt, hash_command
from nasc.cli.train import train_command
from nasc.cli.weights import weights_command

for _command in (
    check,
    fmt,
    hash_command,
    compile_command,
    stats,
    export,
    show,
    train_command,
    search,
    top_command,
    viz,
    diff_command,
    import_group,
    weights_command,
    bench_group,
):
    main.add_command(_command)

__all__ = ["main"]
