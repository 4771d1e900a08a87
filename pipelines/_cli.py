"""What every entry point shares: typed parameters from the command line, and exit codes.

Each pipeline declares a frozen ``Params`` dataclass whose fields carry a docstring each (they
become ``--help``) and checks itself in ``__post_init__``. ``run(main, Params)`` parses
``--name value`` pairs (MLflow passes every parameter as a string and validates none of them),
calls ``main`` and turns a ``ConfigError``/``DataError`` into one line on stderr and exit
code 2; any other failure exits 1 with its traceback.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import itertools
import logging
import math
import os
import signal
import sys
import textwrap
import threading
import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar

from robust.errors import ConfigError, RobustError, Terminated

P = TypeVar("P")
AUTO = ("", "auto", "none", "None")


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass and its bases (as CleanRL's ``Args``
    documents them); a subclass's docstring of a field wins."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not dataclasses.is_dataclass(klass):
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        for node, nxt in itertools.pairwise(tree.body[0].body):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
            ):
                docs[node.target.id] = " ".join(str(nxt.value.value).split())
    return docs


def _convert(name: str, raw: str, kind: Any) -> Any:
    """Convert one command-line string to the field's type, or raise a one-line ConfigError."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in args:
        if raw in AUTO:
            return None
        (kind,) = [a for a in args if a is not type(None)]
    if kind is bool:
        low = raw.lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise ConfigError(f"{name} must be true or false, but got {name}={raw!r}")
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, but got {name}={raw!r}") from None
    if kind is float:
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, but got {name}={raw!r}") from None
        if not math.isfinite(value):  # nan makes every comparison false, inf every sum
            raise ConfigError(f"{name} must be a finite number, but got {name}={raw!r}")
        return value
    if typing.get_origin(kind) is tuple:
        items = tuple(s.strip() for s in raw.split(",") if s.strip())
        item = typing.get_args(kind)[0]
        return items if item is str else tuple(_convert(name, s, item) for s in items)
    return raw


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:
        allowed = ", ".join(a.dest for a in self._actions if a.dest != "help")
        raise ConfigError(f"{message}; the parameters are: {allowed}")


def parse(cls: type[P], argv: list[str] | None = None) -> P:
    """Build ``cls`` from ``--field value`` arguments; unspecified fields keep their defaults."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    module = sys.modules[cls.__module__]
    spec = getattr(module, "__spec__", None)  # under ``python -m`` the module is ``__main__``
    parser = _Parser(
        prog=f"python -m {spec.name if spec else cls.__module__}",
        allow_abbrev=False,
        description=inspect.getdoc(sys.modules[cls.__module__]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for f in dataclasses.fields(cls):
        default = "auto" if f.default is None else f.default
        if isinstance(default, tuple):
            default = ",".join(map(str, default))
        parser.add_argument(
            f"--{f.name}",
            default=None,
            metavar="VALUE",
            help=f"{docs.get(f.name, '')} (default: {default})",
        )
    ns = parser.parse_args(argv)
    given = {k: _convert(k, v, hints[k]) for k, v in vars(ns).items() if v is not None}
    return cls(**given)


def run(main: Callable[[P], Any], cls: type[P], argv: list[str] | None = None) -> int:
    """Parse parameters and run ``main``; return 0 (done), 2 (bad input, one line), 130
    (Ctrl-C) or 143 (SIGTERM: a scheduler, ``docker stop``, Ray); an interrupted stage's run
    ends KILLED.

    Any other exception propagates (Python prints its traceback and exits 1).
    """
    # ``quiet`` only turns progress bars off: what a stage did (e.g. reuse) is always said
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    previous = _on_sigterm()
    try:
        main(parse(cls, argv))
    except RobustError as exc:
        from robust.tracking import fail_adopted_run, one_line

        message = one_line(exc)
        print(f"error: {message}", file=sys.stderr)
        fail_adopted_run(message)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (Terminated)
        from robust.tracking import fail_adopted_run

        why = "terminated" if isinstance(exc, Terminated) else "interrupted"
        print(why, file=sys.stderr)
        fail_adopted_run(why, status="KILLED")
        return 143 if isinstance(exc, Terminated) else 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


def _on_sigterm() -> Any:
    """Raise :class:`robust.errors.Terminated` on SIGTERM (main thread only); return the
    handler it replaces (None when it could not be installed)."""

    def terminate(signum: int, frame: Any) -> None:
        raise Terminated(f"signal {signum}")

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, terminate)


def entry(main: Callable[[P], Any], cls: type[P]) -> typing.NoReturn:
    """A pipeline's ``__main__``: ``run`` it, then exit without interpreter teardown.

    Finalising the modules of mlflow and SQLAlchemy took 0.8–1.2 s after every stage (measured
    with ``benchmarks/tracking_overhead.py``); everything is flushed and the run ended first,
    so skipping it loses nothing.
    """
    code = run(main, cls)
    from robust.tracking import close

    close()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def as_dict(params: Any) -> dict[str, Any]:
    """A Params instance as a plain dict (for logging and the reuse key)."""
    return dataclasses.asdict(params)


def check_choice(name: str, value: Any, choices: typing.Iterable[Any]) -> None:
    """Raise a ConfigError unless ``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(
            f"{name} must be one of {', '.join(map(str, choices))}, but got {name}={value!r}"
        )


def check_min(name: str, value: float | None, low: float, *, strict: bool = False) -> None:
    """Raise a ConfigError unless ``value`` is None (auto) or at least (above) ``low``."""
    if value is None:
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, but got {name}={value}")
    if (value <= low) if strict else (value < low):
        bound = f"greater than {low}" if strict else f"at least {low}"
        raise ConfigError(f"{name} must be {bound}, but got {name}={value}")
