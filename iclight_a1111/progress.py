"""Progress of IC-Light's long work (reading and merging an IC-Light file, background removal,
downloads), told to whatever shows it: A1111's progress bar and console (`webui.progress_bar`), or nobody.

The library reports through `tracked` and `task`; the webui layer installs its reporter with `use`.
"""
from __future__ import annotations

import contextlib
from typing import Iterable, Iterator, Protocol, Sized, TypeVar

T = TypeVar("T")


class ProgressReporter(Protocol):
    def begin(self, text: str, total: int) -> None: ...
    def advance(self, steps: int = 1) -> None: ...
    def end(self) -> None: ...


class Silent:
    """No one is watching (the library used on its own, the benchmark)."""

    def begin(self, text: str, total: int) -> None:
        pass

    def advance(self, steps: int = 1) -> None:
        pass

    def end(self) -> None:
        pass


REPORTER: list[ProgressReporter] = [Silent()]


def use(reporter: ProgressReporter) -> None:
    REPORTER[0] = reporter


@contextlib.contextmanager
def task(text: str, total: int = 1) -> Iterator[ProgressReporter]:
    """A piece of work of `total` steps; the caller advances the reporter it gets."""
    reporter = REPORTER[0]
    reporter.begin(text, total)
    try:
        yield reporter
    finally:
        reporter.end()


def tracked(items: Iterable[T], text: str) -> Iterator[T]:
    """`items`, one step each, as one piece of work called `text`."""
    items = items if isinstance(items, Sized) else list(items)
    with task(text, len(items)) as reporter:
        for item in items:
            yield item
            reporter.advance()
