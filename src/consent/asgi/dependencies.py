"""Guarding routes: a FastAPI dependency, also a plain call in Starlette."""

from __future__ import annotations

import collections.abc as cabc

from ._context import visitor
from .errors import ConsentRequiredError


def requires(key: str) -> cabc.Callable[[], cabc.Awaitable[None]]:
    """A dependency for a route that cannot work without ``key``.

    FastAPI: ``@app.get("/map", dependencies=[Depends(requires("media"))])``.
    Starlette: ``await requires("media")()`` at the start of an endpoint.
    Without consent the route does not run: the visitor gets a page that
    explains and offers the choice, with status 403. A key the policy does
    not declare raises :class:`~consent.UnknownCategoryError` on the first
    request.

    :param key: A category or service key of the policy.
    """

    async def dependency() -> None:
        current = visitor()
        current.policy.category_of(key)
        if not current.allows(key):
            raise ConsentRequiredError(key)

    dependency.__name__ = f"requires_{key}"
    return dependency
