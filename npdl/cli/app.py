"""Typer application and the error policy every command follows.

User errors (bad config, CLI argument, missing or unreadable file, missing data, mismatched
checkpoint, a model too large for memory, ...) print one short message and exit with code 2;
``npdl --debug ...`` shows the traceback instead. Anything else is a bug: a one-line
``internal error`` message pointing at ``--debug``, exit code 1 (see ``classify``).

Both consoles print text literally (rich markup off): run names, paths, config values and
exception messages are user text, and ``[red]x`` or ``npdl[plot]`` must print as written.
Style goes through ``style=`` or ``rich.text.Text``, never through markup in a string.
"""
from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import sys

import typer
from rich.console import Console
from rich.text import Text

CONTEXT = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(add_completion=True, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None, context_settings=CONTEXT,
                  help="npdl: deep learning from the ground up in NumPy.")

STATE: dict = {"debug": False, "stage": None, "failed_stage": None}
console = Console(highlight=False, markup=False)
err_console = Console(stderr=True, highlight=False, markup=False)
MAX_SHOWN = 120  # a longer unbroken word (a 5,000-character path) is shortened in messages


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("npdl")
        except PackageNotFoundError:  # running from a source tree that was never installed
            text = "unknown (not installed: pip install -e .)"
        console.print(f"npdl {text}")
        raise typer.Exit()


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
          version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print npdl's version and exit.")) -> None:
    """npdl: deep learning from the ground up in NumPy."""
    STATE["debug"] = debug


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean 'the input is wrong', not 'npdl is broken'."""
    from npdl.data.sources import DataError
    from npdl.data.tokenizer_base import TokenizerError
    from npdl.data.vocab import VocabError
    from npdl.nn.attention import ContextTooLongError
    from npdl.nn.module import StateDictError
    from npdl.optim.optimizer import OptimizerStateError
    from npdl.config import ConfigError
    from npdl.core.backend import DeviceError
    from npdl.runs import RunError
    from npdl.train.checkpoint import CheckpointError

    return (ConfigError, DataError, RunError, CheckpointError, StateDictError, OptimizerStateError,
            TokenizerError, VocabError, ContextTooLongError, UsageError, DeviceError)


class UsageError(ValueError):
    """A command used wrongly in a way Typer cannot see (e.g. mutually exclusive options)."""


def shorten(text: str, limit: int = MAX_SHOWN) -> str:
    """Shorten every unbroken run of more than ``limit`` characters (a huge path or name) to
    its two ends and its length, so that one message stays readable."""
    keep = limit // 2 - 10

    def cut(match: re.Match) -> str:
        word, tail = re.fullmatch(r"(.*?)([:;,.)'\"]*)", match.group(0)).groups()  # punctuation stays after
        return f"{word[:keep]}...{word[-keep:]} ({len(word):,} characters){tail}"

    return re.sub(r"\S{%d,}" % (limit + 1), cut, text)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print an error and return the Exit to raise: ``raise fail("...")``."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", shorten(message)), soft_wrap=True)
    return typer.Exit(code)


def warn(message: str) -> None:
    """A note on stderr (yellow on a terminal), printed literally."""
    err_console.print(Text(shorten(message), style="yellow"), soft_wrap=True)


@contextlib.contextmanager
def stage(what: str):
    """Name what a command is doing, for the message of an error without context (out of memory)."""
    previous, STATE["stage"] = STATE["stage"], what
    try:
        yield
    except BaseException:
        STATE["failed_stage"] = STATE["failed_stage"] or what  # the innermost stage names the failure
        raise
    finally:
        STATE["stage"] = previous


_OS_HINTS = {
    errno.ENOENT: "check the path",
    errno.EACCES: "check its permissions",
    errno.EPERM: "check its permissions",
    errno.ENAMETOOLONG: "use a shorter path",
    errno.ELOOP: "a symbolic link points (in)directly to itself",
    errno.EISDIR: "expected a file, this is a folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.ENOSPC: "free some disk space and run again",
    errno.EDQUOT: "free some disk space (quota) and run again",
    errno.EROFS: "the file system is read-only",
    errno.EEXIST: "something is already there",
    errno.ENXIO: "not a file that can be opened (a socket or device?)",
}


def os_error_message(exc: OSError) -> str:
    """'PATH: <reason> (<what to do>)' for an OSError on a user-given path."""
    reason = (exc.strerror or str(exc) or type(exc).__name__).rstrip(".")
    reason = reason[0].lower() + reason[1:] if reason else reason
    hint = _OS_HINTS.get(exc.errno)
    where = [os.fsdecode(p) for p in (exc.filename, exc.filename2) if p is not None]
    text = f"{' -> '.join(where)}: {reason}" if where else f"{reason}"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint += "; a training run continues from its last checkpoint with: npdl resume RUN"
    return f"{text} ({hint})" if hint else text


def classify(exc: BaseException) -> tuple[str, int]:
    """(message, exit code) for an exception that reached a command: 2 for what the user can fix
    (their input, their files, their machine's memory or disk), 1 for npdl's own bugs."""
    if isinstance(exc, user_errors()):
        return str(exc), 2
    if isinstance(exc, MemoryError):
        doing = STATE["failed_stage"] or STATE["stage"]
        where = f" while {doing}" if doing else ""
        detail = f" ({exc})" if str(exc) else ""
        return (f"out of memory{where}{detail}: make the model, the batch or the data smaller "
                "(or free memory)"), 2
    if isinstance(exc, OSError):
        return os_error_message(exc), 2
    if isinstance(exc, RuntimeError) and str(exc).startswith("Symlink loop from"):  # Path.resolve(), 3.11
        return f"{str(exc).removeprefix('Symlink loop from ')}: a symbolic link points (in)directly to itself", 2
    if isinstance(exc, UnicodeDecodeError):
        return f"a file is not UTF-8 text ({exc}); save it as UTF-8", 2
    return (f"internal error: {type(exc).__name__}: {exc} (run `npdl --debug ...` for the traceback)"), 1


def command(*args, **kwargs):
    """``@command()``: register a Typer command wrapped in the error policy.

    The command's one-line summary in ``npdl --help`` is ``short_help`` when given, else the
    first line of its docstring (never cut with "..."); options and arguments without a
    ``metavar`` get their upper-case name, so that help shows ``--runs-dir RUNS_DIR``, not a
    Python type.
    """

    def deco(fn):
        kwargs.setdefault("short_help", (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else None)
        kwargs.setdefault("cls", _Command)
        _name_metavars(fn)

        @functools.wraps(fn)
        def wrapper(*a, **k):
            from npdl.core import backend

            STATE["failed_stage"] = None
            devices = backend.snapshot()   # a run's `device:` or a --device lasts as long as its command
            try:
                return fn(*a, **k)
            except typer.Exit:
                raise
            except KeyboardInterrupt:
                err_console.print("interrupted")
                raise typer.Exit(130) from None
            except BrokenPipeError:  # stdout closed (e.g. `| head`): stop printing, quietly
                silence_broken_pipe(sys.stdout)
                raise typer.Exit(141) from None  # the status of a process stopped by SIGPIPE
            except Exception as exc:  # noqa: BLE001 - the policy: user error (2) or bug (1)
                if STATE["debug"]:
                    raise
                message, code = classify(exc)
                raise fail(message, code=code) from None
            finally:
                backend.restore(devices)

        return app.command(*args, **kwargs)(wrapper)

    return deco


def _name_metavars(fn) -> None:
    """Give each option/argument of ``fn`` without a metavar its upper-case name."""
    import inspect

    for name, param in inspect.signature(fn).parameters.items():
        info = param.default
        if not hasattr(info, "metavar") or info.metavar is not None or param.annotation in (bool, "bool"):
            continue
        info.metavar = name.strip("_").upper()


try:  # arguments show their type beside the metavar in help; the metavar says enough
    from typer.core import TyperArgument as _TyperArgument
    from typer.core import TyperCommand as _TyperCommand
except ImportError:  # pragma: no cover - older Typer: plain click classes
    _TyperCommand, _TyperArgument = None, None


if _TyperCommand is not None:
    class _Command(_TyperCommand):
        """Help shows an argument as its metavar only (``RUN...``), not ``RUN... <list[str]>``."""

        def get_params(self, ctx):
            params = super().get_params(ctx)
            for p in params:
                if isinstance(p, _TyperArgument) and p.metavar is not None:
                    p.display_type_rich = lambda ctx=None: None
            return params
else:  # pragma: no cover
    _Command = None


# ---- a closed stdout must not stop the work -----------------------------------------------
def silence_broken_pipe(stream) -> None:
    """Point ``stream``'s descriptor at os.devnull, so that later writes (and the flush at exit)
    succeed silently: what Python's docs recommend for SIGPIPE / EPIPE ("Note on SIGPIPE")."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


class PipeSafeStream:
    """A text stream wrapper: once its reader is gone (``npdl train ... | head``), everything
    written goes to os.devnull instead of raising BrokenPipeError into the training loop."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            silence_broken_pipe(self._stream)
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            silence_broken_pipe(self._stream)
            with contextlib.suppress(BrokenPipeError):
                self._stream.flush()

    def __getattr__(self, name):  # isatty, fileno, encoding, ... of the wrapped stream
        return getattr(self._stream, name)
