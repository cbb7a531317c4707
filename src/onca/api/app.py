"""The FastAPI application serving the API (/api/v1, OpenAPI at /api/docs) and the web console pages.

Each feature module exposes `router: APIRouter` and is listed once in ROUTERS. API modules use
`APIRouter(prefix="/api/v1/...")`; page modules use `APIRouter(include_in_schema=False)`.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException

from onca import __version__
from onca.api.deps import LoginRequired, is_api, login_url
from onca.api.security import DEFAULT_MAX_BODY, BodyLimit, DbSessionPerRequest, SecurityHeaders
from onca.deploy.stacks import home_context
from onca.store.db import make_engine
from onca.web.render import STATIC, render_error

ROUTERS: list[str] = [
    "onca.api.alerts",
    "onca.web.pages_alerts",
    "onca.api.users",
    "onca.api.audit_log",
    "onca.web.pages_auth",
    "onca.web.pages_admin",
    "onca.api.detections",
    "onca.api.search",
    "onca.web.pages_detections",
    "onca.web.pages_search",
    "onca.api.sources",
    "onca.api.destinations",
    "onca.api.deployment",
    "onca.web.pages_sources",
    "onca.web.pages_destinations",
    "onca.web.pages_deployment",
    "onca.web.pages_apidocs",
]


class NotDeployed(RuntimeError):
    """The home has no deployed stack, so there is no database to serve."""


def create_app(home: Path, *, max_body_bytes: int = DEFAULT_MAX_BODY) -> FastAPI:
    ctx = home_context(Path(home))
    if ctx is None:
        raise NotDeployed(f"nothing is deployed in {home}: run `onca deploy` first")
    app = FastAPI(title="Onca", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json", swagger_ui_oauth2_redirect_url=None)
    engine = make_engine(ctx.database_url, ctx.schema)
    app.state.ctx = ctx
    app.state.engine = engine
    app.state.sessions = sessionmaker(engine, expire_on_commit=False)
    for name in ROUTERS:
        app.include_router(importlib.import_module(name).router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _error_handlers(app)
    # Added innermost first: the security headers wrap everything, the DB session sits next to the routes.
    app.add_middleware(DbSessionPerRequest)
    app.add_middleware(BodyLimit, limit=max_body_bytes)
    app.add_middleware(SecurityHeaders)
    return app


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if is_api(request):
            return JSONResponse({"detail": exc.reason}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return RedirectResponse(login_url(request, exc.to), status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if is_api(request) or exc.status_code == 405:
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return render_error(request, exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if is_api(request):
            return await request_validation_exception_handler(request, exc)
        problems = [f"{'.'.join(str(p) for p in error.get('loc', ())[1:]) or 'request'}: {error.get('msg')}"
                    for error in exc.errors()]
        return render_error(request, 422, "; ".join(problems) or "the form is not valid")
