"""The example database: a local directory, plus a shared Redis store when one is named.

Selected by ``$CONV3DT_EXAMPLE_DB`` (``conv3dt gate --example-db URL`` sets it for the session),
e.g. ``redis://127.0.0.1:6379/0``. Every pytest process of every shard and machine then uses

    MultiplexedDatabase(DirectoryBasedExampleDatabase(local), SharedStore(RedisExampleDatabase))

Hypothesis's own classes (``hypothesis.database.MultiplexedDatabase``,
``hypothesis.extra.redis.RedisExampleDatabase``; extra ``conv3dt[redis]``): a failing example
any of them saved replays in the others' reuse phase, is judged there and, as a Finding, enters
that run's regression corpus (``fuzz.corpus``).

``SharedStore`` adds two rules to the Redis database, and nothing else:

- **Gates never delete from the shared store.** A gate's survey round raises nothing
  (``fuzz.failures.every_failure``), so Hypothesis would delete every shared example it
  replays as "no longer failing", and each shrink round would delete the other failures'
  examples: one shard would erase what another found. Deletes reach the local directory only;
  shared examples expire 8 days after they were last saved (``RedisExampleDatabase``'s
  ``expire_after``). A fuzzing engine that manages its database itself (HypoFuzz,
  ``fuzz.continuous``) sets ``engine=True`` and deletes normally.
- **Losing the store never fails a run.** An unreachable store at the start, or any Redis error
  later, makes the store empty and silent for the rest of the process; one warning line goes to
  stderr and ``STATUS`` (written into the session stats as ``example_db``) says what happened.
  The local directory keeps everything: no result is lost.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Iterable
from urllib.parse import urlsplit, urlunsplit

from hypothesis.database import (DirectoryBasedExampleDatabase, ExampleDatabase,
                                 MultiplexedDatabase)

URL_VAR = "CONV3DT_EXAMPLE_DB"
LOCAL_VAR = "CONV3DT_HYPOTHESIS_DB"
ENGINE_VAR = "CONV3DT_EXAMPLE_DB_ENGINE"     # "1": a fuzzing engine's process (deletes allowed)
DEFAULT_LOCAL = os.path.join(".hypothesis", "conv3dt")
KEY_PREFIX = b"conv3dt-example:"
CONNECT_TIMEOUT_S = 2.0
SOCKET_TIMEOUT_S = 5.0

#: This process's store: {"url": redacted URL, "state": "shared" | "unreachable" | "lost",
#: "error": text}; empty when no store is named.
STATUS: dict[str, Any] = {}


def redacted(url: str) -> str:
    """``url`` without a password (what records and warnings show)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = (f"{parts.username}:***@" if parts.username else ":***@") + host
    netloc += f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=netloc))


def _warn(message: str) -> None:
    sys.stderr.write(f"conv3dt: warning: {message}\n")
    sys.stderr.flush()


class SharedStore(ExampleDatabase):
    """A ``RedisExampleDatabase`` that gates never delete from and whose loss degrades to
    nothing (module docstring). ``engine=True``: deletes pass through (a fuzzing engine)."""

    def __init__(self, url: str, engine: bool = False) -> None:
        super().__init__()
        from hypothesis.extra.redis import RedisExampleDatabase
        from redis import Redis

        self.url, self.engine = url, engine
        client = Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_S,
                                socket_timeout=SOCKET_TIMEOUT_S)
        self.redis_db: ExampleDatabase | None = RedisExampleDatabase(client, key_prefix=KEY_PREFIX)
        STATUS.update(url=redacted(url), state="shared", error="")

    def __repr__(self) -> str:
        return f"SharedStore({redacted(self.url)!r}, engine={self.engine})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, SharedStore) and self.url == other.url
                and self.engine == other.engine)

    def __hash__(self) -> int:
        return hash((self.url, self.engine))

    def lose(self, exc: BaseException) -> None:
        """The store failed: warn once, and be empty from now on."""
        if self.redis_db is None:
            return
        self.redis_db = None
        STATUS.update(state="lost", error=f"{type(exc).__name__}: {exc}"[:300])
        _warn(f"example database {redacted(self.url)} lost ({STATUS['error']}); "
              f"continuing with the local directory only")

    def _do(self, op: str, *args) -> None:
        if self.redis_db is not None:
            try:
                getattr(self.redis_db, op)(*args)
            except Exception as exc:  # noqa: BLE001 — any store failure degrades, never fails
                self.lose(exc)

    def fetch(self, key: bytes) -> Iterable[bytes]:
        if self.redis_db is None:
            return
        try:
            values = list(self.redis_db.fetch(key))
        except Exception as exc:  # noqa: BLE001
            self.lose(exc)
            return
        yield from values

    def save(self, key: bytes, value: bytes) -> None:
        self._do("save", key, value)

    def delete(self, key: bytes, value: bytes) -> None:
        if self.engine:
            self._do("delete", key, value)

    def _start_listening(self) -> None:
        # change events for a listener (HypoFuzz's dashboard; gates add none): the Redis
        # database's own pub/sub channel
        self._do("add_listener", self._broadcast_change)

    def _stop_listening(self) -> None:
        self._do("remove_listener", self._broadcast_change)

    def move(self, src: bytes, dest: bytes, value: bytes) -> None:
        # a move is Hypothesis keeping a better example (a shrink step): allowed; only forgetting
        # an example (delete) is reserved to the engine
        self._do("move", src, dest, value)


def shared_store(url: str, engine: bool = False) -> SharedStore | None:
    """The shared store at ``url``, or None (one warning line) when it cannot be reached now."""
    try:
        store = SharedStore(url, engine)
        store.redis_db.redis.ping()
        return store
    except ImportError as exc:
        reason = f"the redis client is not installed ({exc}); pip install 'conv3dt[redis]'"
    except Exception as exc:  # noqa: BLE001 — unreachable, bad URL, refused: degrade
        reason = f"{type(exc).__name__}: {exc}"
    STATUS.update(url=redacted(url), state="unreachable", error=reason[:300])
    _warn(f"example database {redacted(url)} unreachable ({reason[:300]}); "
          f"using the local directory only")
    return None


def example_database(local: str | None = None, url: str | None = None,
                     engine: bool = False) -> ExampleDatabase:
    """The local directory (``$CONV3DT_HYPOTHESIS_DB``, default ``.hypothesis/conv3dt``),
    multiplexed with the shared store at ``url`` (default ``$CONV3DT_EXAMPLE_DB``) when it is
    reachable."""
    local_db = DirectoryBasedExampleDatabase(local or os.environ.get(LOCAL_VAR) or DEFAULT_LOCAL)
    url = url if url is not None else os.environ.get(URL_VAR)
    store = shared_store(url, engine) if url else None
    return local_db if store is None else MultiplexedDatabase(local_db, store)


def check_url(url: str) -> str | None:
    """Why ``url`` cannot name a shared store (usage error text), or None when it can."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        return f"{url!r}: expected a redis://host:port/db URL (or rediss://, unix://)"
    if parts.scheme != "unix" and not parts.hostname:
        return f"{url!r}: no host"
    return None
