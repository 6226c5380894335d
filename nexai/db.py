from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections

T = TypeVar("T")


def in_thread(func: Callable[..., T]) -> Callable[..., Any]:
    """Run a database call from async code in a worker thread, without holding the
    event loop's shared thread. Connections are released as after a request
    (kept while CONN_MAX_AGE allows, closed otherwise), since no request cycle
    runs in these threads to do it."""

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> T:
        try:
            return func(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(run, thread_sensitive=False)
