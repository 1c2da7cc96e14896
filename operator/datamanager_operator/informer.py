"""List then watch one kind into a typed store: the operator's only view of the cluster besides live reads.

Modelled on client-go's shared informer (and controller-runtime's cache), it keeps these of its guarantees:

- **Primed before use.** ``primed`` is set after the first complete list; the reconciler and ``/readyz`` wait
  for every informer's.
- **No missed deletions.** A watch resumes from the last resourceVersion it saw (bookmarks keep that version
  fresh on quiet streams), so it delivers every change after it or fails; on any failure, 410 Gone included,
  the kind is listed again and the store *replaced*: objects missing from the new list are reported deleted,
  as client-go's Replace does (Kopf's re-list does not, which is one reason the operator does its own).
- **Server-side selection.** A label selector goes to the API server: a replica lists and streams only the
  Jobs and pods the operator made, not every Job in the cluster.
- **Newest wins.** An event older than what the store holds (a late echo) changes nothing.

It does not keep client-go's periodic re-delivery of every object; the controller re-queues every resource
on its own resync timer instead. Transient errors are retried with backoff and never end the process.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, Generic, Protocol, TypeVar, cast

import msgspec
from lightkube import AsyncClient

from . import metrics
from .model import Body

log = logging.getLogger(__name__)
WATCH_SECONDS = 290  # the server ends a watch after this; it is resumed from its last version
PAGE = 500


class Versioned(Protocol):
    @property
    def namespace(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> int: ...


V = TypeVar("V", bound=Versioned)
Change = tuple[V | None, V | None]  # (before, after): after None is a deletion


class Store(Generic[V]):
    """The newest view of each object of one kind by (namespace, name), with one secondary index."""

    def __init__(self, index: Callable[[V], str | None] = lambda _: None) -> None:
        self._items: dict[tuple[str, str], V] = {}
        self._index: dict[str, set[tuple[str, str]]] = {}
        self._key_of = index

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[V]:
        return iter(list(self._items.values()))

    def get(self, namespace: str, name: str) -> V | None:
        return self._items.get((namespace, name))

    def indexed(self, value: str) -> list[V]:
        return [self._items[ref] for ref in self._index.get(value, ())]

    def apply(self, view: V) -> Change[V] | None:
        """Stores ``view`` unless the store holds a newer version; returns the change, or None."""
        ref = (view.namespace, view.name)
        before = self._items.get(ref)
        if before is not None and before.version >= view.version:
            return None
        self._unindex(ref, before)
        self._items[ref] = view
        if (value := self._key_of(view)) is not None:
            self._index.setdefault(value, set()).add(ref)
        return before, view

    def remove(self, namespace: str, name: str) -> Change[V] | None:
        ref = (namespace, name)
        before = self._items.pop(ref, None)
        if before is None:
            return None
        self._unindex(ref, before)
        return before, None

    def replace(self, views: Iterable[V], namespace: str | None) -> list[Change[V]]:
        """Makes the store what a fresh list says (in ``namespace``, or everywhere when None): objects not
        listed are deleted, listed ones applied. Returns every change."""
        listed: dict[tuple[str, str], V] = {(v.namespace, v.name): v for v in views}
        changes: list[Change[V]] = []
        for ref in list(self._items):
            gone = (namespace is None or ref[0] == namespace) and ref not in listed
            if gone and (change := self.remove(*ref)) is not None:
                changes.append(change)
        for view in listed.values():  # an object a watch event already brought newer is left as it is
            if (change := self.apply(view)) is not None:
                changes.append(change)
        return changes

    def _unindex(self, ref: tuple[str, str], before: V | None) -> None:
        if before is None or (value := self._key_of(before)) is None:
            return
        refs = self._index.get(value)
        if refs is not None:
            refs.discard(ref)
            if not refs:
                del self._index[value]


class ExpiredError(Exception):
    """The watch's resourceVersion is too old to resume from (410 Gone): list again."""


class Informer(Generic[V]):
    """Keeps ``store`` equal to what the API server holds of ``resource`` in ``namespace`` (None: all)."""

    def __init__(
        self,
        name: str,
        client: AsyncClient,
        resource: Any,
        view: Callable[[Body], V],
        store: Store[V],
        on_change: Callable[[Change[V]], None],
        namespace: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.client = client
        self.resource = resource
        self.view = view
        self.store = store
        self.on_change = on_change
        self.namespace = namespace
        self.selector = ",".join(f"{k}={v}" for k, v in (labels or {}).items()) or None
        self.primed = asyncio.Event()

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                version = await self.relist()
                failures = 0
                await self._watch(version)
            except asyncio.CancelledError:
                raise
            except ExpiredError:  # too old to resume: list again, at once
                metrics.WATCH_RESTARTS.labels(self.name, "expired").inc()
            except Exception as exc:
                failures = await self._pause(failures, exc)

    async def _pause(self, failures: int, exc: Exception) -> int:
        failures += 1
        metrics.WATCH_RESTARTS.labels(self.name, "error").inc()
        delay = min(0.5 * 2**failures, 30.0) * random.uniform(0.8, 1.2)
        if failures == 1 or failures % 20 == 0:  # the metric counts every one
            log.warning(
                "watching %s failed (%d in a row, retry in %.0fs): %s", self.name, failures, delay, exc
            )
        await asyncio.sleep(delay)
        return failures

    # Lists and watches read raw JSON through lightkube's HTTP client: a bookmark is not a valid Job or Pod
    # for lightkube's typed decoder, and the views need plain dicts anyway (no model objects on the way).
    # These are lightkube internals, hence its narrow version range in pyproject.toml.

    def _request(self, params: dict[str, Any], watch: bool) -> Any:
        generic = self.client._client
        basic = generic.prepare_request(
            "list",
            res=self.resource,
            namespace=self.namespace or "*",
            watch=watch,
            params={"labelSelector": self.selector, **params},
        )
        timeout = generic._watch_timeout if watch else None
        return generic._client.build_request(basic.method, basic.url, params=basic.params, timeout=timeout)

    async def _send(self, request: Any, stream: bool = False) -> Any:
        send = cast(Callable[..., Awaitable[Any]], self.client._client.send)
        return await send(request, stream=stream)

    async def relist(self) -> str:
        """Lists the kind (in pages), replaces the store (reporting what changed), returns its version."""
        views: list[V] = []
        token: str | None = None
        while True:
            response = await self._send(self._request({"limit": PAGE, "continue": token}, watch=False))
            _raise_for_status(response)
            page = msgspec.json.decode(response.content)
            # page by page into views: whole objects of every page at once would be the replica's peak memory
            views += [self.view(item) for item in page.get("items") or []]
            meta = page.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                break
        for change in self.store.replace(views, self.namespace):
            self.on_change(change)
        self.primed.set()
        return str(meta.get("resourceVersion") or "")

    async def _watch(self, version: str) -> None:
        """Follows changes after ``version``, resuming from the newest version seen when the server ends the
        stream, until the server refuses to resume or the connection fails (both raise)."""
        while True:
            params = {"watch": "true", "resourceVersion": version, "allowWatchBookmarks": "true"}
            params["timeoutSeconds"] = str(WATCH_SECONDS)
            response = await self._send(self._request(params, watch=True), stream=True)
            try:
                _raise_for_status(response)
                async for line in response.aiter_lines():
                    if line:
                        version = self._apply(msgspec.json.decode(line)) or version
            finally:
                await response.aclose()

    def _apply(self, event: Body) -> str | None:
        kind, body = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if body.get("code") == 410:
                raise ExpiredError(body.get("message", ""))
            raise RuntimeError(f"watch error {body.get('code')}: {body.get('message')}")
        meta = body.get("metadata") or {}
        if kind == "BOOKMARK":
            return str(meta.get("resourceVersion") or "") or None
        if kind == "DELETED":
            change = self.store.remove(meta.get("namespace", ""), meta.get("name", ""))
        else:
            change = self.store.apply(self.view(body))
        if change is not None:
            self.on_change(change)
        return str(meta.get("resourceVersion") or "") or None


def _raise_for_status(response: Any) -> None:
    if response.status_code == 410:
        raise ExpiredError("resourceVersion too old")
    response.raise_for_status()
