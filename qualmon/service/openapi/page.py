"""The contract as one plain HTML page, rendered on the server: no script, no external asset.

Everything taken from the document is escaped; the only markup it gains is `code` spans and
**bold** from its Markdown-ish descriptions, applied after escaping.
"""

from __future__ import annotations

import json
import re
from html import escape
from typing import Any

Doc = dict[str, Any]

DOCS_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
"Inline styles only: nothing to load, nothing to run."
METHODS = ("get", "post", "patch", "delete", "options")
_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem 1.5rem;
color:#1b1b1b}
h2{border-bottom:2px solid #ccc;margin-top:2.5rem}
section.op{border:1px solid #ddd;border-radius:6px;margin:1.2rem 0;padding:.2rem 1rem .8rem}
h3 .method{display:inline-block;min-width:5.5rem;font-family:monospace;text-transform:uppercase}
table{border-collapse:collapse;width:100%;margin:.4rem 0}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}code{background:#f3f3f3;padding:0 .2rem;border-radius:3px}
pre{background:#f6f6f6;padding:.5rem;overflow-x:auto}ul.props{margin:.2rem 0}
nav>ul{columns:2}nav li{break-inside:avoid}td p{margin:0 0 .3rem}
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def prose(text: str) -> str:
    """Escaped text; `code`, **bold** and blank-line paragraphs become markup."""
    html = _e(text)
    html = re.sub(r"`([^`]+)`", r"<code>\1</code>", html)
    html = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", html)
    paragraphs = [p.strip() for p in html.split("\n\n") if p.strip()]
    return "".join(f"<p>{p}</p>" for p in paragraphs)


def _ref_name(schema: Doc) -> str | None:
    ref = schema.get("$ref", "")
    return ref.rsplit("/", 1)[-1] if ref.startswith("#/components/schemas/") else None


def type_of(schema: Doc) -> str:
    """A one-line description of a schema's type, with links to named schemas."""
    name = _ref_name(schema)
    if name is not None:
        return f'<a href="#schema-{_slug(name)}">{_e(name)}</a>'
    if "const" in schema:
        return f"<code>{_e(json.dumps(schema['const'], ensure_ascii=False))}</code>"
    if "enum" in schema:
        return "one of " + ", ".join(
            f"<code>{_e(json.dumps(v, ensure_ascii=False))}</code>" for v in schema["enum"]
        )
    for combiner, word in (("anyOf", " or "), ("oneOf", " | ")):
        if combiner in schema:
            return word.join(type_of(option) for option in schema[combiner])
    kind = schema.get("type")
    if isinstance(kind, list):
        text = " or ".join(_e(k) for k in kind)
    elif kind == "array":
        if "prefixItems" in schema:
            text = "[" + ", ".join(type_of(s) for s in schema["prefixItems"]) + "]"
        else:
            text = "array of " + type_of(schema.get("items", {}))
    elif kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        keys = schema.get("propertyNames", {}).get("enum")
        key = "|".join(_e(k) for k in keys) if keys else "string"
        text = f"object {{{key} → {type_of(schema['additionalProperties'])}}}"
    else:
        text = _e(kind or "any")
    return text + _constraints(schema)


def _constraints(schema: Doc) -> str:
    words = []
    for key, label in (
        ("minimum", "≥"),
        ("maximum", "≤"),
        ("minLength", "length ≥"),
        ("maxLength", "length ≤"),
        ("minItems", "items ≥"),
        ("maxItems", "items ≤"),
        ("pattern", "pattern"),
        ("format", "format"),
        ("default", "default"),
    ):
        if key in schema:
            words.append(f"{label} <code>{_e(schema[key])}</code>")
    return f" ({', '.join(words)})" if words else ""


def _fields_of(schema: Doc) -> Doc | None:
    """The inline object whose fields a schema's reader needs listed: itself, its items, its
    values by key, or the non-null option; None for named schemas (they link) and scalars."""
    if any(key in schema for key in ("properties", "allOf", "oneOf")):
        return schema
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            return _fields_of(schema[key])
    options = [o for o in schema.get("anyOf", ()) if o.get("type") != "null"]
    return _fields_of(options[0]) if len(options) == 1 else None


def properties(schema: Doc, depth: int = 0) -> str:
    """A nested list of an object's properties; the conditional parts of a union too."""
    items = []
    required = set(schema.get("required", ()))
    for name, sub in schema.get("properties", {}).items():
        need = "required" if name in required else "optional"
        line = f"<code>{_e(name)}</code>: {type_of(sub)} <em>{need}</em>"
        if "description" in sub:
            line += f" — {_e(sub['description'])}"
        inner = _fields_of(sub)
        if depth < 3 and inner is not None:
            line += properties(inner, depth + 1)
        items.append(f"<li>{line}</li>")
    for part in schema.get("allOf", ()):
        if "if" in part:
            when = ", ".join(
                f"<code>{_e(name)}</code> is {type_of(condition)}"
                for name, condition in part["if"].get("properties", {}).items()
            )
            items.append(f"<li>when {when}:{properties(part['then'], depth + 1)}</li>")
    for option in schema.get("oneOf", ()):
        if "properties" in option:
            items.append(f"<li>one form:{properties(option, depth + 1)}</li>")
    if schema.get("additionalProperties") is True or (
        schema.get("type") == "object" and "additionalProperties" not in schema and items
    ):
        items.append("<li><em>other properties are ignored</em></li>")
    return f'<ul class="props">{"".join(items)}</ul>' if items else ""


def _auth(op: Doc, schemes: Doc) -> str:
    options = op.get("security") or []
    if not options:
        return "<p><strong>Auth:</strong> none.</p>"
    scopes = next(iter(options[0].values()))
    ways = []
    for option in options:
        for scheme in option:
            spec = schemes.get(scheme, {})
            ways.append(
                "<code>Authorization: Bearer …</code>"
                if spec.get("type") == "http"
                else f"<code>?{_e(spec.get('name', scheme))}=…</code>"
            )
    names = " or ".join(f"<code>{_e(scope)}</code>" for scope in scopes)
    return f"<p><strong>Auth:</strong> token scope {names}, as {' or '.join(ways)}.</p>"


def _parameters(op: Doc) -> str:
    rows = [
        f"<tr><td><code>{_e(p['name'])}</code></td><td>{_e(p['in'])}</td>"
        f"<td>{'yes' if p.get('required') else 'no'}</td><td>{type_of(p.get('schema', {}))}</td>"
        f"<td>{_e(p.get('description', ''))}</td></tr>"
        for p in op.get("parameters", ())
    ]
    if not rows:
        return ""
    head = "<tr><th>name</th><th>in</th><th>required</th><th>type</th><th>meaning</th></tr>"
    return f"<h4>Parameters</h4><table>{head}{''.join(rows)}</table>"


def _media(content: Doc) -> str:
    parts = []
    for media_type, media in content.items():
        schema = media.get("schema", {})
        part = f"<p><code>{_e(media_type)}</code>: {type_of(schema)}</p>"
        if "example" in media:
            example = media["example"]
            text = example if isinstance(example, str) else json.dumps(example, indent=2)
            part += f"<details><summary>example</summary><pre>{_e(text)}</pre></details>"
        parts.append(part)
    return "".join(parts)


def _responses(op: Doc, responses: Doc) -> str:
    rows = []
    for status, answer in op["responses"].items():
        if "$ref" in answer:  # a shared answer, #/components/responses/<name>
            answer = responses[answer["$ref"].rsplit("/", 1)[-1]]
        headers = "".join(
            f"<div>header <code>{_e(h)}</code>: {type_of(spec.get('schema', {}))}</div>"
            for h, spec in answer.get("headers", {}).items()
        )
        body = _media(answer.get("content", {}))
        rows.append(
            f"<tr><td><code>{_e(status)}</code></td><td>{prose(answer['description'])}</td>"
            f"<td>{body}{headers}</td></tr>"
        )
    head = "<tr><th>status</th><th>when</th><th>body and headers</th></tr>"
    return f"<h4>Responses</h4><table>{head}{''.join(rows)}</table>"


def _operation(path: str, method: str, op: Doc, doc: Doc) -> str:
    components = doc["components"]
    body = op.get("requestBody")
    request = f"<h4>Request body</h4>{_media(body['content'])}" if body else ""
    return (
        f'<section class="op" id="{_e(op["operationId"])}">'
        f'<h3><span class="method">{_e(method)}</span> <code>{_e(path)}</code></h3>'
        f"<p><strong>{_e(op['summary'])}</strong></p>{prose(op['description'])}"
        f"{_auth(op, components['securitySchemes'])}{_parameters(op)}{request}"
        f"{_responses(op, components['responses'])}</section>"
    )


def render_docs(doc: Doc) -> str:
    """The whole page: operations grouped by tag, then the named schemas."""
    info = doc["info"]
    by_tag: dict[str, list[str]] = {tag["name"]: [] for tag in doc.get("tags", ())}
    toc: dict[str, list[str]] = {name: [] for name in by_tag}
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                op = item[method]
                tag = op["tags"][0]
                by_tag.setdefault(tag, []).append(_operation(path, method, op, doc))
                toc.setdefault(tag, []).append(
                    f'<li><a href="#{_e(op["operationId"])}">{_e(method.upper())} '
                    f"{_e(path)}</a></li>"
                )
    sections = "".join(
        f'<h2 id="tag-{_slug(tag)}">{_e(tag)}</h2>{"".join(ops)}' for tag, ops in by_tag.items()
    )
    nav = "".join(f"<li>{_e(tag)}<ul>{''.join(items)}</ul></li>" for tag, items in toc.items())
    schemas = "".join(
        f'<section class="op" id="schema-{_slug(name)}"><h3>{_e(name)}</h3>'
        f"{prose(schema.get('description', ''))}<p>{type_of(schema)}</p>{properties(schema)}"
        "</section>"
        for name, schema in doc["components"]["schemas"].items()
    )
    title = f"{info['title']} {info['version']} — HTTP API"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>{_e(title)}</h1>{prose(info.get('description', ''))}"
        '<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI '
        f"{_e(doc['openapi'])}).</p></header>"
        f"<nav><h2>Endpoints</h2><ul>{nav}</ul></nav><main>{sections}"
        f'<h2 id="schemas">Schemas</h2>{schemas}</main></body></html>'
    )
