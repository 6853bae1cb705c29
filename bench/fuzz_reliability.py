"""A bounded fuzz campaign over what nasc reads and writes, as an attacker and a careless user would:

    python bench/fuzz_reliability.py [--seconds 60] [--seed 0] [--only cells,injection,...] [--json out.json]

Each class runs for about --seconds and counts inputs tried and outcomes; a failure is anything
the reliability contract forbids, recorded with an example:

  cells       mutated zoo files (bytes, tokens, lines, huge names, control characters): parse →
              check → format → hash → emit. Failure: an exception other than NascError, a round
              trip that changes the genotype, one input taking over 10 s.
  injection   payloads in metadata, comments, file names: emitted Python, DOT and the exchange
              formats. Failure: the payload's marker outside a string literal or a comment.
  importers   hostile DARTS genotype files and NASNet-format documents (calls, lambdas, deep
              nesting, huge literals). Failure: code ran (a marker file), a crash, over 10 s.
  checkpoints damaged, hostile and odd torch/safetensors files given to `nasc weights`' reader and
              importer. Failure: code ran, an error other than WeightsError, a value cast silently.
  files       `nasc compile -o` killed with SIGKILL at a random moment. Failure: the output half
              written, or a temporary left after the next write to the folder.
  signals     `nasc train` sent SIGTERM at a random moment. Failure: an exit other than 0/130, no
              message, or a saved checkpoint that does not resume.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import nasc
from nasc.compiler.options import EmitOptions

ROOT = Path(__file__).resolve().parent.parent
ZOO = sorted((ROOT / "genotypes").glob("*.cell"))
MARKER = "PWNED"
SLOW_SECONDS = 10.0


class Tally:
    def __init__(self, name: str) -> None:
        self.name, self.tried, self.outcomes, self.failures = name, 0, Counter(), Counter()
        self.examples: dict[str, str] = {}

    def outcome(self, kind: str) -> None:
        self.tried += 1
        self.outcomes[kind] += 1

    def failure(self, kind: str, example: str) -> None:
        self.tried += 1
        self.failures[kind] += 1
        self.examples.setdefault(kind, example[:300])

    def report(self) -> dict:
        return {
            "tried": self.tried,
            "outcomes": dict(self.outcomes),
            "failures": dict(self.failures),
            "examples": self.examples,
        }


def until(seconds: float) -> Iterator[int]:
    deadline, count = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        yield count
        count += 1


# -- cells ------------------------------------------------------------------------------------------

ALPHABET = [*'(){},=#"\\\n\t _:.-0123456789abchsx', "\x1b", "\u202e", "\u2028", "\x00", "é", "𝔥"]


def mutate(text: str, rng: random.Random) -> str:
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(6)
        at = rng.randrange(len(text) + 1)
        if kind == 0:
            text = text[:at] + rng.choice(ALPHABET) + text[at:]
        elif kind == 1:
            text = text[:at] + text[at + rng.randint(1, 8) :]
        elif kind == 2:
            words = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)
            if words:
                old = rng.choice(words)
                new = rng.choice([rng.choice(words), old * rng.choice([2, 1000, 100_000]), old + "_x"])
                text = text.replace(old, new, rng.randint(1, 3))
        elif kind == 3:
            lines = text.split("\n")
            line = rng.randrange(len(lines))
            lines.insert(rng.randrange(len(lines)), lines[line])
            text = "\n".join(lines)
        elif kind == 4:
            lines = text.split("\n")
            del lines[rng.randrange(len(lines))]
            text = "\n".join(lines)
        else:
            text = text[:at] + rng.choice(["(" * 50_000, "h2, " * 20_000, "#" * 10_000, "\r"]) + text[at:]
    return text


def fuzz_cells(seconds: float, rng: random.Random) -> Tally:
    from nasc.compiler.compilation import compile_genotype

    tally = Tally("cells")
    texts = [path.read_text() for path in ZOO]
    for _ in until(seconds):
        text = mutate(rng.choice(texts), rng)
        started = time.perf_counter()
        try:
            genotype = nasc.parse(text, "fuzz.cell")
            printed = nasc.format(genotype)
            if nasc.parse(printed) != genotype or nasc.format(nasc.parse(printed)) != printed:
                tally.failure("round trip changed the genotype", text)
                continue
            nasc.structural_hash(genotype)
            if rng.random() < 0.2:
                ast.parse(compile_genotype(genotype).emit())
            kind = "valid"
        except nasc.NascError:
            kind = "diagnosed"
        except ValueError as error:  # the emitter's refusal of a preset or a shape
            kind = "refused by the emitter" if "preset" in str(error) or "shape" in str(error) else ""
            if not kind:
                tally.failure(f"crash: ValueError: {error}"[:80], text)
                continue
        except Exception as error:
            tally.failure(f"crash: {type(error).__name__}", f"{error!r} on {text!r}")
            continue
        if time.perf_counter() - started > SLOW_SECONDS:
            tally.failure("slow", text)
        else:
            tally.outcome(kind)
    return tally


# -- injection --------------------------------------------------------------------------------------

PAYLOADS = [
    f'"; import os; {MARKER}()  #',
    f'"""\n{MARKER}()\n"""',
    f"\\\n{MARKER}()",
    f"\n{MARKER}()\n",
    f"\r{MARKER}()",
    f"\u2028{MARKER}()",
    f"{{{{ {MARKER}() }}}}",
    f"{{% for x in {MARKER}() %}}",
    f"</svg><script>{MARKER}()</script>",
    f'" ]; {MARKER} [ label="',
    f"*/ {MARKER}() /*",
    f"' + {MARKER}() + '",
    f"\\x27; {MARKER}()",
    f"${{{MARKER}}}",
    f"\x00{MARKER}",
]


def _marker_outside_strings_python(source: str) -> bool:
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name | ast.Attribute | ast.FunctionDef | ast.ClassDef | ast.alias):
            text = getattr(node, "id", None) or getattr(node, "attr", None) or getattr(node, "name", "")
            if MARKER in str(text):
                return True
    return False


def _marker_outside_strings_dot(source: str) -> bool:
    """DOT: every marker must sit inside a double-quoted string or a // comment line."""
    outside, quoted, index = [], False, 0
    while index < len(source):
        char = source[index]
        if quoted and char == "\\":
            index += 2
            continue
        if char == '"':
            quoted = not quoted
        elif not quoted and source.startswith("//", index):
            index = source.find("\n", index)
            if index < 0:
                break
            continue
        elif not quoted:
            outside.append(char)
        index += 1
    return MARKER in "".join(outside)


def fuzz_injection(seconds: float, rng: random.Random) -> Tally:
    from nasc.compiler.compilation import compile_genotype
    from nasc.compiler.darts_format import write_darts
    from nasc.compiler.nasnet_format import FormatError, write_nasnet
    from nasc.compiler.viz import to_dot

    tally = Tally("injection")
    texts = {path.name: path.read_text() for path in ZOO}
    for _ in until(seconds):
        name = rng.choice(sorted(texts))
        payload = rng.choice(PAYLOADS)
        where = rng.choice(["meta", "comment", "filename"])
        escaped = payload.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
        text = texts[name]
        if where == "meta":
            text = text.replace("meta {", f'meta {{\n    note = "{escaped}"', 1)
        elif where == "comment":
            text = text.replace("\n", f"  # {payload.splitlines()[0] if payload.strip() else payload}\n", 3)
        try:
            genotype = nasc.parse(text, payload if where == "filename" else name)
        except nasc.NascError:
            tally.outcome("refused by the checker")
            continue
        options = EmitOptions(source_file=payload if where == "filename" else name)
        try:
            outputs = {"python": compile_genotype(genotype, options).emit(), "dot": to_dot(genotype)}
            with contextlib.suppress(FormatError):  # a cell the format cannot hold
                outputs["nasnet-json"] = write_nasnet(genotype)
            if genotype.convention == "darts":
                outputs["darts-py"] = write_darts(genotype)
        except Exception as error:
            tally.failure(f"crash: {type(error).__name__}", f"{where}: {payload!r}")
            continue
        broken = []
        for kind, out in outputs.items():
            if kind in ("python", "darts-py"):
                try:
                    injected = _marker_outside_strings_python(out)
                except SyntaxError:
                    injected = True
            elif kind == "dot":
                injected = _marker_outside_strings_dot(out)
            else:
                injected = not isinstance(json.loads(out), dict)
            if injected:
                broken.append(kind)
        if broken:
            tally.failure(f"injected into {', '.join(broken)}", f"{where}: {payload!r}")
        else:
            tally.outcome(f"inert ({where})")
    return tally


# -- importers --------------------------------------------------------------------------------------


def _genotype(normal: str, concat: str = "[2, 3, 4, 5]") -> str:
    return f"Genotype(normal={normal}, normal_concat={concat}, reduce={normal}, reduce_concat={concat})"


def hostile_importer_input(rng: random.Random, marker: Path) -> tuple[str, str]:
    run_code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    pairs = "[" + ", ".join(f"('sep_conv_3x3', {i % 2})" for i in range(8)) + "]"
    base = f"G = {_genotype(pairs)}"
    darts = [
        f"G = {_genotype(run_code)}",
        f"{run_code}\n{base}",
        f"G = {_genotype(f'[(lambda: {run_code})()]')}",
        f"G = {_genotype(f'[x for x in {run_code}]')}",
        f"G = {_genotype('[' * 100_000 + ']' * 100_000)}",
        f"G = {_genotype('[(' + repr('sep_conv_3x3') + ', 10**10**10)]')}",
        f"G = {_genotype('[(' + repr('a' * 1_000_000) + ', 0)]')}",
        f"G = {_genotype('[(f' + repr('{' + run_code + '}') + ', 0)]')}",
        f"@{run_code}\ndef f(): pass\n{base}",
        base.replace("Genotype(", "Genotype(**{'normal': 1}, "),
        f"G = {_genotype(pairs, 'range(2, 6)')}",
        f"G = {_genotype(pairs, f'range({run_code})')}",
        mutate(base, rng),
        "\n".join(f"G{i} = {_genotype(pairs)}" for i in range(rng.choice([2, 5000]))),
        "\x00" + base,
        base.encode("utf-16").decode("latin-1"),
    ]
    cell = {"operations": ["separable_3x3_2"] * 10, "hiddenstate_indices": [10**100] * 10}
    nasnet = [
        json.dumps({"cells": {"normal": {"operations": [run_code] * 10, "hiddenstate_indices": [0] * 10}}}),
        "{" * 100_000,
        json.dumps({"cells": {"normal": {**cell, "used_hiddenstates": [0] * 7}}}),
        f"{{'cells': {run_code}}}",
        "[" + "1," * 1_000_000 + "]",
    ]
    if rng.random() < 0.6:
        return "darts", rng.choice(darts)
    return "nasnet", mutate(rng.choice(nasnet), rng) if rng.random() < 0.3 else rng.choice(nasnet)


def fuzz_importers(seconds: float, rng: random.Random) -> Tally:
    from nasc.compiler.darts_format import read_darts
    from nasc.compiler.nasnet_format import read_nasnet

    tally = Tally("importers")
    with tempfile.TemporaryDirectory() as folder:
        marker = Path(folder) / MARKER
        for _ in until(seconds):
            kind, text = hostile_importer_input(rng, marker)
            started = time.perf_counter()
            try:
                genotype = read_darts(text, "fuzz.py") if kind == "darts" else read_nasnet(text, "fuzz.json")
                nasc.parse(nasc.format(genotype))
                outcome = "imported"
            except nasc.NascError:
                outcome = "diagnosed"
            except Exception as error:
                tally.failure(f"crash: {type(error).__name__}", f"{kind}: {text[:200]!r}")
                continue
            if marker.exists():
                tally.failure("code ran", f"{kind}: {text[:200]!r}")
                marker.unlink()
            elif time.perf_counter() - started > SLOW_SECONDS:
                tally.failure("slow", f"{kind}: {text[:200]!r}")
            else:
                tally.outcome(f"{kind} {outcome}")
    return tally


# -- checkpoints ------------------------------------------------------------------------------------


class _Exploit:
    def __init__(self, call: Callable, *args) -> None:
        self.call, self.args = call, args

    def __reduce__(self):
        return (self.call, self.args)


def hostile_checkpoint(rng: random.Random, state: dict, folder: Path, marker: Path) -> tuple[str, Path]:
    import torch

    path = folder / f"c{rng.randrange(10**9)}.pt"
    name = next(key for key in state if key.endswith("op.1.weight"))
    kind = rng.choice(
        [
            "good",
            "truncated",
            "flipped",
            "exploit",
            "exploit-nested",
            "exploit-legacy",
            "bomb",
            "meta",
            "int64",
            "bool",
            "complex",
            "nan",
            "inf",
            "half",
            "float64",
            "sparse",
            "safetensors-as-pt",
            "safetensors-truncated",
            "empty",
            "directory",
            "fifo",
            "not-a-dict",
            "escape-name",
            "wrapped",
        ]
    )
    edited = dict(state)
    if kind in ("good", "truncated", "flipped", "wrapped"):
        torch.save({"state_dict": edited} if kind == "wrapped" else edited, path)
        data = bytearray(path.read_bytes())
        if kind == "truncated":
            del data[rng.randrange(len(data)) :]
        elif kind == "flipped":
            for _ in range(rng.randint(1, 20)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(data))
    elif kind.startswith("exploit"):
        payload = _Exploit(Path.touch, marker)
        if kind == "exploit-nested":
            payload = {"state_dict": {name: payload}}
        torch.save(payload, path, _use_new_zipfile_serialization=kind != "exploit-legacy")
    elif kind == "bomb":
        buffer = io.BytesIO()
        torch.save({name: torch.zeros(4)}, buffer)
        with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(path, "w") as bomb:
            for entry in source.infolist():
                data = bytes(50_000_000) if entry.filename.endswith("data/0") else source.read(entry)
                bomb.writestr(entry.filename, data, compress_type=zipfile.ZIP_DEFLATED)
    elif kind == "safetensors-as-pt" or kind == "safetensors-truncated":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in edited.items()}, str(path))
        if kind == "safetensors-truncated":
            path.write_bytes(path.read_bytes()[: rng.randrange(path.stat().st_size)])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "not-a-dict":
        torch.save([edited[name]], path)
    elif kind == "escape-name":
        edited["\x1b[2J\u202e" + name] = edited.pop(name)
        torch.save(edited, path)
    else:
        tensor = edited[name]
        edited[name] = {
            "meta": lambda: torch.empty(tensor.shape, device="meta"),
            "int64": lambda: tensor.to(torch.int64),
            "bool": lambda: tensor > 0,
            "complex": lambda: tensor.to(torch.complex64),
            "nan": lambda: tensor.clone().fill_(float("nan")),
            "inf": lambda: tensor.clone().index_fill_(0, torch.tensor([0]), float("inf")),
            "half": lambda: tensor.half(),
            "float64": lambda: tensor.double(),
            "sparse": lambda: tensor.to_sparse(),
        }[kind]()
        torch.save(edited, path)
    return kind, path


def fuzz_checkpoints(seconds: float, rng: random.Random) -> Tally:
    import torch

    from nasc.runtime.build import build_network
    from nasc.runtime.weights import WeightsError, import_weights, read_checkpoint

    sys.path.insert(0, str(ROOT))
    from tests.darts_reference import NetworkCIFAR, reference_genotypes

    tally = Tally("checkpoints")
    genotype = nasc.load(ROOT / "genotypes" / "darts_v2.cell")
    peer = NetworkCIFAR(8, 10, 5, auxiliary=False, genotype=reference_genotypes()["DARTS_V2"])
    state = peer.state_dict()
    options = EmitOptions(preset="cifar", cells_per_stage=1, penultimate_filters=128)
    model = build_network(genotype, options, num_classes=10).model
    should_load = {"good", "wrapped", "half", "float64", "safetensors-as-pt"}
    with tempfile.TemporaryDirectory() as folder:
        marker = Path(folder) / MARKER
        for _ in until(seconds):
            kind, path = hostile_checkpoint(rng, state, Path(folder), marker)
            try:
                imported = import_weights(genotype, read_checkpoint(path), "darts", model)
                model.load_state_dict(imported.state_dict)
                outcome = "loaded"
                if kind not in should_load and kind not in ("flipped", "truncated"):
                    tally.failure(f"{kind} accepted silently", str(path))
                    continue
                values = torch.cat([t.flatten().double() for t in imported.state_dict.values()])
                if not torch.isfinite(values).all():
                    tally.failure("non-finite weights accepted", kind)
                    continue
            except WeightsError as error:
                outcome = "refused"
                if "\x1b" in str(error) and kind == "escape-name":
                    outcome = "refused (raw name: escaped at the CLI boundary)"
                if kind in should_load:
                    tally.failure(f"{kind} refused: {error}"[:100], str(path))
                    continue
            except Exception as error:
                tally.failure(f"crash: {type(error).__name__} ({kind})", repr(error)[:200])
                continue
            if marker.exists():
                tally.failure("code ran", kind)
                marker.unlink()
                continue
            tally.outcome(f"{kind}: {outcome}")
    return tally


# -- files and signals ------------------------------------------------------------------------------


def fuzz_files(seconds: float, rng: random.Random) -> Tally:
    tally = Tally("files")
    cell = ROOT / "genotypes" / "nasnet_a.cell"
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "model.py"
        complete = subprocess.run(
            [sys.executable, "-m", "nasc", "compile", str(cell), "-o", "-"], capture_output=True, check=True
        ).stdout
        for count in until(seconds):
            if count % 2:
                out.unlink(missing_ok=True)
            process = subprocess.Popen(
                [sys.executable, "-m", "nasc", "compile", str(cell), "-o", str(out), "--force"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(rng.uniform(0.05, 1.5))
            process.kill()
            process.wait()
            if out.exists() and out.read_bytes() != complete:
                tally.failure("half-written output", f"{len(out.read_bytes())} of {len(complete)} bytes")
                continue
            state = "whole" if out.exists() else "absent (killed before the rename)"
            left = [p.name for p in Path(folder).iterdir() if p.name.endswith(".tmp")]
            subprocess.run(
                [sys.executable, "-m", "nasc", "compile", str(cell), "-o", str(out)],
                capture_output=True,
                check=True,
            )
            if any(p.name.endswith(".tmp") for p in Path(folder).iterdir()):
                tally.failure("temporary left after the next write", ", ".join(left))
            else:
                tally.outcome(f"killed: output {state}" + (", its temporary cleaned" if left else ""))
    return tally


def fuzz_signals(seconds: float, rng: random.Random) -> Tally:
    tally = Tally("signals")
    cell = ROOT / "genotypes" / "nasnet_a.cell"
    base = [sys.executable, "-m", "nasc", "train", str(cell), "--scale", "1@96", "--epochs", "2"]
    with tempfile.TemporaryDirectory() as folder:
        for count in until(seconds):
            out = Path(folder) / f"run{count}"
            process = subprocess.Popen(
                [*base, "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            time.sleep(rng.uniform(0.0, 8.0))
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=300)
            message = stderr.decode().strip().splitlines()[-1:] or [""]
            if process.returncode == 0:
                tally.outcome("finished before the signal")
            elif process.returncode != 130 or not message[0]:
                tally.failure(f"exit {process.returncode}", message[0])
            elif (out / "checkpoint.pt").exists():
                resumed = subprocess.run([*base, "--out", str(out), "--resume"], capture_output=True)
                if resumed.returncode == 0:
                    tally.outcome("stopped with a checkpoint, resumed")
                else:
                    tally.failure("did not resume", resumed.stderr.decode()[-200:])
            else:
                tally.outcome(f"interrupted before training: {message[0]}")
    return tally


CLASSES = {
    "cells": fuzz_cells,
    "injection": fuzz_injection,
    "importers": fuzz_importers,
    "checkpoints": fuzz_checkpoints,
    "files": fuzz_files,
    "signals": fuzz_signals,
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="Time per class.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default=",".join(CLASSES), help="Comma-separated classes.")
    parser.add_argument("--json", help="Write the report here too.")
    args = parser.parse_args()
    report = {}
    for name in args.only.split(","):
        started = time.perf_counter()
        tally = CLASSES[name](args.seconds, random.Random(args.seed))
        report[name] = {**tally.report(), "seconds": round(time.perf_counter() - started, 1)}
        failures = sum(tally.failures.values())
        print(f"{name}: {tally.tried:,} tried, {failures} failures {dict(tally.failures) or ''}", flush=True)
        for kind, count in sorted(tally.outcomes.items()):
            print(f"    {count:>7,}  {kind}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
