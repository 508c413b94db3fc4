"""The Jinja environment of the report's templates (``templates/``), built once, on the first render.

jinja2 is imported here, inside ``environment()``, and nowhere else: importing ``shared.report`` (or the
Function App) does not load it.

Escaping. ``*.html.j2`` templates autoescape, and every ``{{ value }}`` is escaped by ``html.escape``
(``&quot;`` and ``&#x27;`` for quotes, as the report always wrote them) rather than by markupsafe's
``&#34;`` / ``&#39;``: the environment's ``finalize`` escapes a value before autoescaping sees it, and
hands it on as ``Markup`` so it is not escaped twice. Macro output and ``Markup`` pass unchanged. The
``~`` operator and the ``join`` filter escape their operands with markupsafe before ``finalize`` runs,
so HTML templates write values side by side instead.
"""
from __future__ import annotations

import functools
import html
from typing import TYPE_CHECKING

from . import words
from .model import NO_OWNER, NO_TEAM, OLDEST_LIMIT, ROWS_SHOWN

if TYPE_CHECKING:
    import jinja2


@functools.cache
def environment() -> jinja2.Environment:
    import jinja2
    from markupsafe import Markup

    @jinja2.pass_eval_context
    def escape_as_html_escape(eval_ctx: jinja2.nodes.EvalContext, value: object) -> object:
        if eval_ctx.autoescape and not hasattr(value, "__html__"):
            return Markup(html.escape(str(value), quote=True))
        return value

    env = jinja2.Environment(
        loader=jinja2.PackageLoader(__package__, "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=True),
        undefined=jinja2.StrictUndefined,
        finalize=escape_as_html_escape,
        trim_blocks=True,  # a line holding only a {% tag %} leaves nothing in the output
        lstrip_blocks=True,
        keep_trailing_newline=True,  # a page ends with a line break
        auto_reload=False,
    )
    env.filters.update(pct=words.pct, thousands=words.thousands, plural=words.plural, age=words.age,
                       date=words.day, time=words.utc_time, short=words.short, framework=words.framework_name)
    env.globals.update(NO_OWNER=NO_OWNER, NO_TEAM=NO_TEAM, OLDEST_LIMIT=OLDEST_LIMIT, ROWS_SHOWN=ROWS_SHOWN,
                       GLOSSARY=words.GLOSSARY)
    return env
