"""Reading GitHub's lists a page at a time, within a page cap: oldest first, or newest first.

githubkit's paginator follows `Link: next` for as long as GitHub sends one (an endless list was
2,370 pages in 8 s). Here every listing stops after `max_pages` pages. GitHub lists an issue's
comments oldest first and offers no other order, while a run needs the newest: the first page's
`Link: last` names the last page, and the walk goes backwards from there, then ends with page 1
(the oldest comments: often a maintainer's triage). A thread longer than the cap leaves the pages
between unread, and its `PageWalk` says so. Which pages to read is decided by the pure functions
below; the calls are the caller's.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Generic, TypeVar
from urllib.parse import parse_qs, urlsplit

T = TypeVar("T")

Links = Mapping[str | None, Mapping[str, str]]  # httpx.Response.links: rel -> {"url": ...}


def page_of(url: str) -> int | None:
    """The `page` a Link URL names; None when it names none (or nonsense)."""
    values = parse_qs(urlsplit(url).query).get("page", [])
    try:
        page = int(values[0]) if values else None
    except ValueError:
        return None
    return page if page is not None and page >= 1 else None


def linked_page(links: Links, rel: str) -> int | None:
    link = links.get(rel)
    return page_of(link.get("url", "")) if link is not None else None


def newest_first(last: int, max_pages: int) -> tuple[list[int], bool]:
    """After page 1 (read to learn `last`), the pages to read, newest first, within the cap
    (page 1 counts; its items come after these); and whether they complete the list. False: the
    pages between page 1 and these are left unread (`between`)."""
    pages = list(range(last, 1, -1))[: max(max_pages - 1, 0)]
    return pages, len(pages) == last - 1


def between(last: int, max_pages: int) -> range:
    """The pages `newest_first` leaves unread, oldest first (empty when it reads them all)."""
    newest, _ = newest_first(last, max_pages)
    return range(2, last - len(newest) + 1)


class PageWalk(Generic[T]):
    """A listing's pages as an async iterator (close it, or read it to the end), and `cut`:
    whether the walk has passed over pages the cap left unread.

    `cut` turns True just before the first page after the gap is yielded, so a reader that stops
    earlier, having read only the newest pages, sees False: it missed nothing it wanted."""

    def __init__(self, walk: Callable[[PageWalk[T]], AsyncGenerator[list[T], None]]) -> None:
        self.cut = False
        self._pages = walk(self)

    def __aiter__(self) -> PageWalk[T]:
        return self

    async def __anext__(self) -> list[T]:
        return await anext(self._pages)

    async def aclose(self) -> None:
        await self._pages.aclose()


async def oldest_first(
    fetch: Callable[[int], Awaitable[tuple[list[T], bool]]], max_pages: int
) -> tuple[list[T], bool]:
    """Pages 1, 2, ... while `fetch(page)` says there are more (its `Link: next`), at most
    `max_pages`; the items, and whether GitHub still had more when the cap stopped the walk."""
    found: list[T] = []
    for page in range(1, max_pages + 1):
        items, more = await fetch(page)
        found += items
        if not more or not items:
            return found, False
    return found, True
