"""The engine API's description for people: ``/openapi.json`` with its security scheme (every route
takes ``Authorization: Bearer KEY``) and a page rendered here from it, so the docs work offline (no
script or style from a CDN, as Swagger UI and ReDoc would fetch)."""

from __future__ import annotations

import html
import json
from typing import Any

SCHEME = {"BearerKey": {"type": "http", "scheme": "bearer", "description": "an API key (mm keys create)"}}
METHODS = ("get", "post", "put", "patch", "delete")


def with_security(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with the bearer-key scheme, required by every operation."""
    spec = dict(spec)
    spec["components"] = {**spec.get("components", {}), "securitySchemes": SCHEME}
    spec["security"] = [{"BearerKey": []}]
    return spec


def docs_page(spec: dict[str, Any]) -> str:
    """Every operation with its summary, description, parameters, body and answers, in one page."""
    title = html.escape(spec.get("info", {}).get("title", "API"))
    sections = []
    for path, operations in sorted(spec.get("paths", {}).items()):
        for method in METHODS:
            op = operations.get(method)
            if op is not None:
                sections.append(_operation(method, path, op))
    schemas = spec.get("components", {}).get("schemas", {})
    models = "".join(
        f"<details><summary><code>{html.escape(name)}</code></summary><pre>{_json(body)}</pre></details>"
        for name, body in sorted(schemas.items())
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>{STYLE}</style>"
        f"</head><body><h1>{title}</h1><p>Every route needs <code>Authorization: Bearer KEY</code>; the "
        "role each needs is in docs/live.md. Machine-readable: <a href='/openapi.json'>/openapi.json</a>."
        f"</p>{''.join(sections)}<h2>Schemas</h2>{models}</body></html>"
    )


def _operation(method: str, path: str, op: dict[str, Any]) -> str:
    params = "".join(
        f"<li><code>{html.escape(p['name'])}</code> ({html.escape(p.get('in', ''))})"
        f"{' required' if p.get('required') else ''}</li>"
        for p in op.get("parameters", [])
    )
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    answers = ", ".join(html.escape(code) for code in op.get("responses", {}))
    body_html = f"<p>body</p><pre>{_json(body)}</pre>" if body else ""
    text = html.escape(op.get("description") or op.get("summary") or "")
    return (
        f"<section><h3><span class='m {method}'>{method.upper()}</span> <code>{html.escape(path)}</code></h3>"
        f"<p>{text}</p>{f'<ul>{params}</ul>' if params else ''}"
        f"{body_html}<p class='r'>answers: {answers}</p></section>"
    )


def _json(value: Any) -> str:
    return html.escape(json.dumps(value, indent=2))


STYLE = (
    "body{font:14px system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}"
    "section{border-top:1px solid #ddd;padding:.4em 0}.m{display:inline-block;min-width:4.5em;color:#fff;"
    "padding:0 .4em;border-radius:3px;font-size:12px}.get{background:#2b7}.post{background:#27c}"
    ".patch{background:#c82}.delete{background:#c33}.put{background:#888}pre{background:#f6f6f6;"
    "padding:.5em;overflow:auto}.r{color:#666}"
)
