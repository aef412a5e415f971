"""Renderers turn a Plan into text for people (rich text, markdown) or programs (JSON)."""

from claractl.plan.render.markdown import render_markdown
from claractl.plan.render.text import render_apply_result, render_text
from claractl.plan.serialize import to_json as render_json

__all__ = ["render_text", "render_markdown", "render_json", "render_apply_result"]
