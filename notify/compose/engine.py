"""The template engine for staff-written text: jinja2, sandboxed, and small on purpose.

Staff templates are untrusted. Besides jinja2's `SandboxedEnvironment` (no private
attributes, no unsafe calls) and `StrictUndefined` (a misspelt variable is an error, not an
empty string), every template is parsed and checked against an allowlist before it is
compiled: output, variables, attribute/item access, `if`, comparisons, `~` and a handful of
filters that cannot blow up. No loops, assignments, calls, macros, includes, `*`, `%`, `**`:
nothing a template could use to make gigabytes of text or spin a worker. Source and output
are size-limited too; output is streamed and cut off at the limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2 import TemplateError as JinjaError
from jinja2.sandbox import SandboxedEnvironment

from notify.errors import TemplateError

SOURCE_MAX_CHARS = 20_000
OUTPUT_MAX_CHARS = 200_000
# jinja2 compiles and renders by recursion; a tree this deep stays far from Python's limit
# wherever it is rendered (a request handler, a worker), so depth fails here or never.
MAX_NESTING = 64
_TOO_DEEP = f"テンプレートの入れ子が深すぎます / template nested deeper than {MAX_NESTING} levels"

ALLOWED_NODES: tuple[type[nodes.Node], ...] = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Const,
    nodes.Name,
    nodes.Getattr,
    nodes.Getitem,
    nodes.Slice,
    nodes.If,
    nodes.CondExpr,
    nodes.Compare,
    nodes.Operand,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Neg,
    nodes.Pos,
    nodes.Concat,
    nodes.Add,
    nodes.Sub,
    nodes.Filter,
    nodes.Test,
    nodes.Tuple,
    nodes.List,
    nodes.Keyword,
)
ALLOWED_FILTERS = frozenset(
    {
        "abs", "capitalize", "count", "d", "default", "e", "escape", "first", "float", "int",
        "last", "length", "lower", "round", "string", "striptags", "title", "trim", "truncate",
        "upper", "urlencode", "wordcount",
    }
)  # fmt: skip
ALLOWED_TESTS = frozenset(
    {
        "boolean", "defined", "divisibleby", "eq", "equalto", "even", "false", "ge", "gt", "in",
        "integer", "le", "lower", "lt", "ne", "none", "number", "odd", "string", "true",
        "undefined", "upper",
    }
)  # fmt: skip
# What a staff member sees when a construct is refused.
_REFUSED = {
    nodes.For: "loops ({% for %}) are not allowed",
    nodes.Assign: "{% set %} is not allowed",
    nodes.AssignBlock: "{% set %} is not allowed",
    nodes.Call: "function and method calls are not allowed",
    nodes.Macro: "macros are not allowed",
    nodes.Mul: "the * operator is not allowed",
    nodes.Pow: "the ** operator is not allowed",
    nodes.Mod: "the % operator is not allowed",
    nodes.Include: "{% include %} is not allowed",
    nodes.Extends: "{% extends %} is not allowed",
}


def _environment(*, html: bool) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=html,
        keep_trailing_newline=True,
        auto_reload=False,
        cache_size=0,
    )
    env.globals.clear()  # no range(), lipsum(), cycler(), namespace() …
    return env


_TEXT_ENV = _environment(html=False)
_HTML_ENV = _environment(html=True)


def check_source(source: str, *, html: bool = False) -> nodes.Template:
    """Parse and check a template against the allowlist; raises TemplateError (no path)."""
    if len(source) > SOURCE_MAX_CHARS:
        raise TemplateError(
            f"テンプレートが長すぎます / template longer than {SOURCE_MAX_CHARS} chars"
        )
    env = _HTML_ENV if html else _TEXT_ENV
    try:
        tree = env.parse(source)
    except JinjaError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise TemplateError(f"テンプレートの構文エラー / syntax error{where}: {exc}") from exc
    except RecursionError as exc:  # the parser recurses too: far deeper than MAX_NESTING
        raise TemplateError(_TOO_DEEP) from exc
    todo: list[tuple[nodes.Node, int]] = [(tree, 1)]  # a loop: find_all() would recurse
    while todo:
        node, depth = todo.pop()
        if depth > MAX_NESTING:
            raise TemplateError(f"{_TOO_DEEP} (line {node.lineno})")
        _check_node(node)
        todo.extend((child, depth + 1) for child in node.iter_child_nodes())
    return tree


def _check_node(node: nodes.Node) -> None:
    if isinstance(node, nodes.Filter) and node.name not in ALLOWED_FILTERS:
        raise TemplateError(
            f"フィルタ {node.name!r} は使えません / filter not allowed (line {node.lineno})"
        )
    if isinstance(node, nodes.Test) and node.name not in ALLOWED_TESTS:
        raise TemplateError(
            f"テスト {node.name!r} は使えません / test not allowed (line {node.lineno})"
        )
    if isinstance(node, nodes.Name) and node.ctx != "load":
        raise TemplateError(f"代入はできません / assignment not allowed (line {node.lineno})")
    if not isinstance(node, ALLOWED_NODES):
        reason = next(
            (text for kind, text in _REFUSED.items() if isinstance(node, kind)),
            f"{type(node).__name__} is not allowed",
        )
        raise TemplateError(f"使えない構文です / {reason} (line {node.lineno})")


@lru_cache(maxsize=1024)
def _compiled(source: str, html: bool) -> Any:
    env = _HTML_ENV if html else _TEXT_ENV
    return env.from_string(check_source(source, html=html))


def render_template(
    source: str,
    context: Mapping[str, Any],
    *,
    field: str,
    html: bool = False,
    max_chars: int = OUTPUT_MAX_CHARS,
) -> str:
    """Render one template; every failure becomes a TemplateError naming `field`."""
    try:
        template = _compiled(source, html)
        parts: list[str] = []
        size = 0
        for chunk in template.generate(dict(context)):
            size += len(chunk)
            if size > max_chars:
                raise TemplateError(f"出力が長すぎます / output longer than {max_chars} chars")
            parts.append(chunk)
        return "".join(parts)
    except TemplateError as exc:
        raise TemplateError(exc.message, fields={field: exc.message}) from exc
    except JinjaError as exc:  # undefined variable, sandbox refusal
        message = f"テンプレートを表示できません / cannot render: {exc}"
        raise TemplateError(message, fields={field: str(exc)}) from exc
    except (TypeError, ValueError, ArithmeticError, LookupError, RecursionError) as exc:
        message = f"テンプレートを表示できません / cannot render: {type(exc).__name__}: {exc}"
        raise TemplateError(message, fields={field: f"{type(exc).__name__}: {exc}"}) from exc


def check_template(source: str, *, field: str, html: bool = False) -> None:
    """Compile only (no context): syntax and allowlist, naming `field` on failure."""
    try:
        _compiled(source, html)
    except TemplateError as exc:
        raise TemplateError(exc.message, fields={field: exc.message}) from exc
