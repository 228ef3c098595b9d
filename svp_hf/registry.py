"""A small validated name -> class registry, used for proxies and strategies."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .errors import RegistryError

T = TypeVar("T", bound=type)

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class Registry(Generic[T]):
    """Maps lowercase snake_case names to classes.

    The name is checked before anything is stored, and registering a name twice raises, so a plugin can
    never silently replace a built-in.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        if not isinstance(name, str) or not _NAME.match(name):
            raise RegistryError(
                f"invalid {self.kind} name {name!r}: use lowercase snake_case (letters, digits, underscores)"
            )
        if name in self._entries:
            raise RegistryError(f"{self.kind} {name!r} is already registered (by {self._entries[name].__qualname__})")

        def decorator(cls: T) -> T:
            if name in self._entries:  # registered between the call and the decoration
                raise RegistryError(f"{self.kind} {name!r} is already registered")
            cls.name = name
            self._entries[name] = cls
            return cls

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            close = difflib.get_close_matches(str(name), self._entries, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise RegistryError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(sorted(self._entries))}.{hint}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
