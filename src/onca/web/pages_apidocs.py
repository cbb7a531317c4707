"""`/api/docs`: the API reference, rendered on the server from the app's own OpenAPI document.

FastAPI's Swagger UI loads its script from a CDN and runs inline script; an Onca server is often offline and
its Content-Security-Policy allows neither. This page needs neither, and `/api/openapi.json` is the document
itself for tools and code generators.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from onca.web.render import render

router = APIRouter(include_in_schema=False)

_METHODS = ("get", "post", "put", "patch", "delete")


def operations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per operation, grouped by tag then path: what the page lists."""
    out = []
    for path, item in spec.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            parameters = [{"name": p["name"], "in": p["in"], "required": p.get("required", False),
                           "type": p.get("schema", {}).get("type", ""), "description": p.get("description", "")}
                          for p in operation.get("parameters", [])]
            body = operation.get("requestBody", {}).get("content", {})
            out.append({"tag": (operation.get("tags") or ["other"])[0], "method": method.upper(), "path": path,
                        "summary": operation.get("summary", ""), "description": operation.get("description", ""),
                        "parameters": parameters, "body": ", ".join(sorted(body)),
                        "responses": sorted(operation.get("responses", {}))})
    return sorted(out, key=lambda o: (o["tag"], o["path"], _METHODS.index(o["method"].lower())))


@router.get("/api/docs", response_class=HTMLResponse)
def api_docs(request: Request) -> HTMLResponse:
    principal = getattr(request.state, "principal", None)
    spec = request.app.openapi()
    return render(request, "api_docs.html", principal, title=spec["info"]["title"],
                  version=spec["info"]["version"], operations=operations(spec))
