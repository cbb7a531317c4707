"""Rendering console pages: one Jinja2 environment (autoescape on), the layout's context, flash messages.

Page routes call `render(request, "alerts.html", principal, alerts=...)`. Templates extend
"base.html", fill `{% block title %}` and `{% block content %}`, and put `{{ csrf_field() }}` in every
form that POSTs. The navigation shows only pages that exist and that the principal may open (each
page route's permission is read from its `requires(...)` dependency).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from onca import __version__
from onca.alerts.queries import ALERT_UPDATED
from onca.api.routing import flat_routes

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
FLASH_COOKIE = "onca_flash"
FLASH_KINDS = ("info", "success", "warning", "error")

# (label, path): shown when a GET route with that path exists and the principal holds its permission.
NAV: tuple[tuple[str, str], ...] = (
    ("Overview", "/"),
    ("Alerts", "/alerts"),
    ("Detections", "/detections"),
    ("Search", "/search"),
    ("Sources", "/sources"),
    ("Destinations", "/destinations"),
    ("Health", "/health"),
    ("Deployment", "/deployment"),
    ("Users", "/users"),
    ("Audit log", "/audit"),
)
_UNKNOWN = object()
# Audit actions whose details map each changed field to [old, new].
CHANGE_ACTIONS = frozenset({ALERT_UPDATED})


def _when(value: datetime | str | None, precision: str = "seconds", zone: bool = True) -> str:
    """A timestamp as people read it in a console: UTC, no microseconds (`zone=False`: no " UTC" suffix, for
    table columns whose header says UTC)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    text = moment.strftime("%Y-%m-%d %H:%M" if precision == "minutes" else "%Y-%m-%d %H:%M:%S")
    return text + " UTC" if zone else text


def _to_json(value: Any, compact: bool = False) -> str:
    """Pretty JSON for <pre> blocks, or one line when `compact` (still escaped by autoescape when output)."""
    if compact:
        return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False, separators=(", ", ": "))
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def _plain(value: Any) -> str:
    """A setting's or a record's value as people read it, never a Python repr: no value is a dash, booleans are
    true/false, a list of plain values is comma-separated, anything nested is one line of JSON."""
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict | list | tuple):
        return _to_json(value, compact=True)
    return str(value)


def _audit_details(details: Mapping[str, Any] | None, action: str) -> list[tuple[str, str]]:
    """An audit record's details as (key, readable value) pairs; a change's [old, new] reads "old → new"."""
    changes = action in CHANGE_ACTIONS
    items = []
    for key, value in sorted((details or {}).items()):
        if changes and isinstance(value, list) and len(value) == 2:
            items.append((key, f"{_plain(value[0])} → {_plain(value[1])}"))
        else:
            items.append((key, _plain(value)))
    return items


environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True,
                          default_for_string=True), trim_blocks=True, lstrip_blocks=True)
environment.filters["when"] = _when
environment.filters["to_json"] = _to_json
environment.filters["plain"] = _plain
environment.filters["audit_details"] = _audit_details
environment.globals["version"] = __version__


def route_permission(request: Request, path: str) -> str | object | None:
    """The permission the GET page at `path` requires (None: any signed-in user); _UNKNOWN if there is none."""
    cache: dict[str, Any] | None = getattr(request.app.state, "page_permissions", None)
    if cache is None:
        cache = request.app.state.page_permissions = {}
    if path not in cache:
        cache[path] = _UNKNOWN
        for route in flat_routes(request.app):
            if isinstance(route, APIRoute) and route.path == path and "GET" in route.methods:
                cache[path] = _dependency_permission(route.dependant)
                break
    return cache[path]


def _dependency_permission(dependant: Any) -> str | None:
    for sub in dependant.dependencies:
        if hasattr(sub.call, "onca_permission"):
            return sub.call.onca_permission
        found = _dependency_permission(sub)
        if found is not None:
            return found
    return None


def nav_items(request: Request, principal: Any) -> list[dict[str, Any]]:
    if principal is None:
        return []
    items = []
    current = request.url.path
    for label, path in NAV:
        permission = route_permission(request, path)
        if permission is _UNKNOWN or (permission is not None and not principal.can(permission)):
            continue
        active = current == path or (path != "/" and current.startswith(path + "/"))
        items.append({"label": label, "href": path, "active": active})
    return items


def _read_flash(request: Request) -> list[tuple[str, str]]:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return []
    try:
        kind, message = json.loads(unquote(raw))
    except (ValueError, TypeError):
        return []
    return [(kind if kind in FLASH_KINDS else "info", str(message)[:500])]


def flash(response: Any, message: str, kind: str = "info") -> None:
    """Show `message` on the next page rendered for this browser (kept in a short-lived cookie)."""
    value = quote(json.dumps([kind, message[:500]]), safe="")
    response.set_cookie(FLASH_COOKIE, value, max_age=60, httponly=True, samesite="lax", path="/")


def redirect(url: str, message: str | None = None, kind: str = "success") -> RedirectResponse:
    """303 See Other to `url` (a POST's answer), optionally with a flash message."""
    response = RedirectResponse(url, status_code=303)
    if message:
        flash(response, message, kind)
    return response


def safe_next(target: str | None, default: str = "/") -> str:
    """A post-login destination that stays on this site (no //host or scheme: no open redirect)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or any(c in target for c in "\r\n"):
        return default
    return target


def render(request: Request, template: str, principal: Any, status_code: int = 200,
           headers: Mapping[str, str] | None = None, **context: Any) -> HTMLResponse:
    """The page `template` in the layout, for `principal` (None on the sign-in pages)."""
    given = context.pop("csrf_token", None)  # the sign-in pages' token, before there is a principal
    csrf = principal.csrf_token if principal is not None else given

    def csrf_field() -> Markup:
        return Markup('<input type="hidden" name="csrf_token" value="{}">').format(escape(csrf or ""))

    flashes = _read_flash(request)
    html = environment.get_template(template).render(
        request=request, principal=principal, nav=nav_items(request, principal), flashes=flashes,
        csrf_field=csrf_field, csrf_token=csrf or "", current_path=request.url.path, **context)
    response = HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))
    if flashes:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def render_error(request: Request, status_code: int, message: str,
                 headers: Mapping[str, str] | None = None) -> HTMLResponse:
    titles = {400: "Bad request", 401: "Sign in required", 403: "Not allowed", 404: "Not found",
              409: "Conflict", 413: "Too large", 422: "Invalid input", 429: "Too many attempts"}
    principal = getattr(request.state, "principal", None)
    return render(request, "error.html", principal, status_code=status_code, headers=headers,
                  title=titles.get(status_code, "Error"), message=message, status=status_code)
