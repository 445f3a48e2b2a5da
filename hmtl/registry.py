"""Name -> class registries, so a config string picks a reader, task head or sampler.

Adding a task type is one file with ``@TASKS.register("name")``; nothing else changes.
"""
from __future__ import annotations

import importlib
from typing import Callable, Generic, TypeVar

from hmtl.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return add

    def get(self, name: str, key: str = "") -> T:
        if name not in self._entries:
            where = f"{key}: " if key else ""
            raise ConfigError(f"{where}unknown {self.kind} {name!r}; known: {', '.join(sorted(self._entries))}")
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)


READERS: Registry = Registry("reader")
TASKS: Registry = Registry("task type")
SAMPLERS: Registry = Registry("sampler")


def include(modules: list[str]) -> None:
    """Import the config's ``include`` modules, so that what they register can be named in it with no edit to hmtl."""
    for index, module in enumerate(modules):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            raise ConfigError(f"include[{index}]: cannot import {module!r} ({error}); is its folder on PYTHONPATH?") from None
