"""A Starlette app with one database endpoint family and one that needs no database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from pgwarden.guard import AsyncGuardedPool, Guard, GuardMiddleware, PoolLimits, SessionTimeouts


def starlette_app(
    dsn: str, guard: Guard, *, limits: PoolLimits, timeouts: SessionTimeouts
) -> tuple[Starlette, AsyncGuardedPool]:
    pool = AsyncGuardedPool(dsn, guard, limits=limits, timeouts=timeouts)

    async def invoices(request: Request) -> Response:
        async with pool.connection() as c:
            cur = await c.execute("SELECT count(*) FROM invoices")
            row = await cur.fetchone()
        assert row is not None
        return JSONResponse({"count": row[0]})

    async def sleep(request: Request) -> Response:
        async with pool.connection() as c:
            await c.execute("SELECT pg_sleep(%s)", [float(request.query_params["s"])])
        return PlainTextResponse("slept")

    async def ping(request: Request) -> Response:
        return PlainTextResponse("pong")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with pool:
            yield

    app = Starlette(
        routes=[Route("/invoices", invoices), Route("/sleep", sleep), Route("/ping", ping)],
        middleware=[Middleware(GuardMiddleware, guard=guard, exempt_paths=["/ping"])],
        lifespan=lifespan,
    )
    return app, pool
