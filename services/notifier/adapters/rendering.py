"""Jinja2 templates per channel: sandboxed, HTML autoescaped, strict about missing data.

``templates/<name>/`` holds the variants a template offers:
``email.subject.j2`` + ``email.txt.j2`` + ``email.html.j2``; ``line.txt.j2`` and/or
``line.flex.json.j2`` (a JSON message object or list); ``push.title.j2`` +
``push.body.j2`` (+ ``push.link.j2``). Marketing mail always gets the legal footer
(``_footer.txt.j2`` / ``_footer.html.j2``): it is appended here, not left to authors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import orjson
from jinja2.sandbox import SandboxedEnvironment

from schemas.channels import Channel
from services.notifier.adapters.messages import Content, EmailContent, LineContent, PushContent

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
MAX_LINE_MESSAGES = 5
MAX_LINE_TEXT_CHARS = 5000


class RenderError(Exception):
    """A template could not produce a valid message (the request fails; the worker lives)."""


@dataclass(frozen=True)
class Sender:
    """Who sends marketing mail, as 特定電子メール法 wants it shown."""

    name: str
    email: str
    address: str
    contact: str


def _autoescape(name: str | None) -> bool:
    return bool(name and name.endswith(".html.j2"))


def _json(value: Any, **_: Any) -> str:
    """``tojson`` through orjson (Jinja still makes the result HTML-safe)."""
    return orjson.dumps(value).decode()


def _truncate(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Renderer:
    def __init__(
        self,
        sender: Sender,
        directory: Path = TEMPLATES_DIR,
        push_title_max: int = 50,
        push_body_max: int = 150,
    ) -> None:
        self._env = SandboxedEnvironment(
            loader=jinja2.FileSystemLoader(directory),
            autoescape=_autoescape,
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=False,
            auto_reload=False,
        )
        self._env.filters["yen"] = lambda value: f"¥{int(value):,}"
        self._env.policies["json.dumps_function"] = _json
        self._env.policies["json.dumps_kwargs"] = {}
        # Every part of one message renders in one context (globals merged once, not per
        # part), and template lookups, absent variants included, are answered from memory.
        self._globals = dict(self._env.globals)
        self._templates: dict[str, jinja2.Template | None] = {}
        self._sender = sender
        self._push_limits = (push_title_max, push_body_max)
        self._by_channel: dict[Channel, Callable[[str, dict[str, Any]], Content]] = {
            Channel.EMAIL: self._email,
            Channel.LINE: self._line,
            Channel.PUSH: self._push,
        }

    def render(
        self, template: str, channel: Channel, data: dict[str, Any], unsubscribe_url: str | None
    ) -> Content:
        """The message for ``channel``; ``unsubscribe_url`` set means marketing (footer on)."""
        context = {
            **self._globals,
            **data,
            "sender": self._sender,
            "unsubscribe_url": unsubscribe_url,
            "marketing": unsubscribe_url is not None,
        }
        if channel not in self._by_channel or "/" in template or template.startswith("_"):
            raise RenderError(f"no {channel.value} variant for template {template!r}")
        try:
            return self._by_channel[channel](template, context)
        except RenderError:
            raise
        except jinja2.TemplateNotFound as err:
            raise RenderError(f"template {template!r} has no {err.name}") from None
        except jinja2.TemplateError as err:
            raise RenderError(f"template {template!r}: {type(err).__name__}: {err}") from None
        except Exception as err:  # bad data (a filter given a non-number, ...): this request
            raise RenderError(f"template {template!r}: {type(err).__name__}: {err}") from None

    def _lookup(self, name: str) -> jinja2.Template | None:
        if name not in self._templates:
            try:
                found = self._env.get_template(name)
            except jinja2.TemplateNotFound:
                self._templates[name] = None
            else:
                found.globals = dict(found.globals)  # a ChainMap is merged on every render
                self._templates[name] = found
        return self._templates[name]

    def _render(self, name: str, context: dict[str, Any]) -> str | None:
        """``name`` rendered in ``context`` (which already holds the globals), or None."""
        found = self._lookup(name)
        if found is None:
            return None
        shared = found.new_context(context, shared=True)
        return self._env.concat(found.root_render_func(shared)).strip()

    def _required(self, name: str, context: dict[str, Any]) -> str:
        rendered = self._render(name, context)
        if rendered is None:
            raise jinja2.TemplateNotFound(name)
        return rendered

    def _part(self, template: str, part: str, context: dict[str, Any]) -> str:
        return self._required(f"{template}/{part}", context)

    def _optional(self, template: str, part: str, context: dict[str, Any]) -> str | None:
        return self._render(f"{template}/{part}", context)

    def _email(self, template: str, context: dict[str, Any]) -> EmailContent:
        subject = " ".join(self._part(template, "email.subject.j2", context).split())
        text = self._part(template, "email.txt.j2", context)
        html = self._part(template, "email.html.j2", context)
        if context["marketing"]:
            text += "\n\n" + self._required("_footer.txt.j2", context)
            footer = self._required("_footer.html.j2", context)
            at = html.rfind("</body>")
            html = html[:at] + footer + html[at:] if at >= 0 else html + footer
        return EmailContent(subject, text + "\n", html, context["unsubscribe_url"])

    def _line(self, template: str, context: dict[str, Any]) -> LineContent:
        messages: list[dict[str, Any]] = []
        flex = self._optional(template, "line.flex.json.j2", context)
        if flex is not None:
            try:
                parsed = orjson.loads(flex)
            except orjson.JSONDecodeError as err:
                raise RenderError(f"template {template!r}: flex is not JSON: {err}") from None
            messages += parsed if isinstance(parsed, list) else [parsed]
        text = self._optional(template, "line.txt.j2", context)
        if text:
            messages.append({"type": "text", "text": text[:MAX_LINE_TEXT_CHARS]})
        if not 1 <= len(messages) <= MAX_LINE_MESSAGES:
            raise RenderError(f"template {template!r}: {len(messages)} LINE messages (1..5)")
        return LineContent(tuple(messages))

    def _push(self, template: str, context: dict[str, Any]) -> PushContent:
        title_max, body_max = self._push_limits
        title = _truncate(self._part(template, "push.title.j2", context), title_max)
        body = _truncate(self._part(template, "push.body.j2", context), body_max)
        return PushContent(title, body, self._optional(template, "push.link.j2", context) or None)
