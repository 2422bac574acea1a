"""Checks of CLI values that their types cannot express, shared by the commands.

Numbers: finite and in range (Typer callbacks, so the message names the option). Paths: a file
to read must be a regular file (a FIFO or device would block or never end), a file to write
needs an existing folder and must not be a folder, FIFO or device. Each failure is a
``UsageError`` (exit 2) naming the option and the path.
"""
from __future__ import annotations

import math
import os
import stat
from pathlib import Path

import typer

from npdl.cli.app import UsageError, os_error_message


def check_checkpoint(which: str) -> str:
    """Refuse a --checkpoint value that cannot name a checkpoint before anything is loaded:
    a step number of absurd length, or a path that is missing, a folder, a FIFO or a device."""
    if which in ("best", "last"):
        return which
    if which.startswith("step-"):
        if not which[5:].isdigit() or len(which) > 25:
            raise UsageError(f"--checkpoint {which}: expected best, last, step-N (N a number) or a file path")
        return which
    regular_file(Path(which), "--checkpoint")
    return which


def number_between(low: float, high: float, zero_ok: bool = False):
    """Typer callback for a float option: finite, in [low, high] (or exactly 0 when ``zero_ok``);
    one message that says the allowed range, also for NaN."""

    def check(value: float | None) -> float | None:
        if value is None or (zero_ok and value == 0) or (math.isfinite(value) and low <= value <= high):
            return value
        allowed = f"0 or a number from {low} to {high}" if zero_ok else f"a number from {low} to {high}"
        raise typer.BadParameter(f"expected {allowed}, got {value}")

    return check


def regular_file(path: Path, what: str) -> Path:
    """``path`` if it is an existing regular file (following links); a UsageError naming ``what``
    otherwise. A FIFO or device is refused before anything opens it (opening would block or
    read without end)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise UsageError(f"{what} {os_error_message(exc)}") from None
    if not stat.S_ISREG(mode):
        raise UsageError(f"{what} {path}: not a regular file ({_kind(mode)})")
    return path


def output_file(path: Path, what: str) -> Path:
    """``path`` if a file may be written there: its folder exists and it is not a folder, FIFO
    or device (opening a FIFO for writing blocks until someone reads it)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise UsageError(f"{what} {os_error_message(exc)}") from None
    if mode is not None and not stat.S_ISREG(mode):
        raise UsageError(f"{what} {path}: exists and is not a regular file ({_kind(mode)})")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{what} {path}: the folder {parent} does not exist (create it first)")
    return path


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a plain file"


DEVICE_HELP = ("Where tensors live: cpu, cuda, cuda:N (needs pip install -e \".[cuda]\" and a GPU) or "
               "emulated (a CPU stand-in that refuses host/device mix-ups, for testing).")


def on_device(device: str | None):
    """``with on_device(--device value):`` the command's tensors live there (it wins over a run's
    ``device:``); nothing changes without the option. An unknown name or a missing CuPy/GPU is a
    ``DeviceError`` (exit 2, saying what is missing)."""
    import contextlib

    from npdl.core import backend

    return backend.device(device) if device else contextlib.nullcontext()


def use_device(device: str | None) -> None:
    """``--device`` for the rest of the command (the command wrapper restores the default after)."""
    if device:
        from npdl.core import backend

        backend.choose_device(device)
