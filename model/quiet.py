"""Third-party output kept out of the workbench's own: library progress bars and warnings.

Loading a model prints transformers' "Loading weights" bars and peft's and transformers'
FutureWarnings about their own internals, and `datasets` prints "Saving the dataset" bars;
none of it is something a researcher can act on, and it buries the workbench's progress
lines. `quiet_libraries()` silences them around one call and restores the settings after.
"""

from __future__ import annotations

import functools
import importlib
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

# (module, is it on?, turn off, turn on) for each library's progress bars.
_BARS: tuple[tuple[str, str, str, str], ...] = (
    ("transformers.utils.logging", "is_progress_bar_enabled", "disable_progress_bar",
     "enable_progress_bar"),
    ("huggingface_hub.utils", "!are_progress_bars_disabled", "disable_progress_bars",
     "enable_progress_bars"),
    ("datasets", "is_progress_bar_enabled", "disable_progress_bars", "enable_progress_bars"),
)  # fmt: skip
# Libraries whose own logger speaks at warning level during loading.
_LOGGING = ("transformers.utils.logging", "datasets.utils.logging")


def _module(name: str):  # noqa: ANN202 - a module, or None when the library is not loaded
    # Only a library already imported: the block must not pay for importing one it never uses.
    if name.split(".", 1)[0] not in sys.modules:
        return None
    return importlib.import_module(name)


@contextmanager
def quiet_libraries() -> Iterator[None]:
    """Within the block: no transformers / huggingface_hub / datasets progress bars, their
    loggers at error level, and FutureWarning and DeprecationWarning ignored.

    Import the library before the block: only libraries already loaded are quietened.

    The warning filters are process-wide while the block runs (the warnings module has no
    per-thread filters), so the block should wrap only the library call.
    """
    restore: list[Callable[[], None]] = []
    try:
        for name, is_on, off, on in _BARS:
            module = _module(name)
            if module is None:
                continue
            if is_on.startswith("!"):
                enabled = not getattr(module, is_on[1:])()
            else:
                enabled = getattr(module, is_on)()
            getattr(module, off)()
            if enabled:
                restore.append(getattr(module, on))
        for name in _LOGGING:
            module = _module(name)
            if module is None:
                continue
            level = module.get_verbosity()
            module.set_verbosity_error()
            restore.append(lambda module=module, level=level: module.set_verbosity(level))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        for undo in reversed(restore):
            undo()


def quietly(*libraries: str) -> Callable[[F], F]:
    """A function run inside `quiet_libraries()`, `libraries` imported first so that they
    are quietened (e.g. `@quietly("transformers")` on a function that saves a model)."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            for name in libraries:
                importlib.import_module(name)
            with quiet_libraries():
                return function(*args, **kwargs)

        return run  # type: ignore[return-value]

    return decorate
