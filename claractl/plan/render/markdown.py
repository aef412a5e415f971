"""A plan as a pull-request comment: summary, a table, and the field diffs in a collapsed block.
Past 60,000 characters (GitHub allows 65,536) the diff is cut with a note."""

from __future__ import annotations

from claractl.plan.model import CREATE, DELETE, REPLACE, UPDATE, Plan
from claractl.plan.render.lines import change_lines

LIMIT = 60_000
ICON = {CREATE: "➕ create", UPDATE: "🔄 update", DELETE: "🗑️ delete", REPLACE: "♻️ replace"}
# GitHub's diff highlighting colours lines by their first character.
DIFF_MARK = {"+": "+", "-": "-", "~": "!", "-/+": "!", " ": " "}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(plan: Plan, limit: int = LIMIT) -> str:
    head = [f"### claractl plan: `{plan.project}` on `{plan.target}`", ""]
    for w in plan.warnings:
        head += [f"> **Warning:** {w}", ""]
    pending = plan.pending
    if not pending:
        head += ["**No changes.** The target matches the project.", ""]
        return "\n".join(head)
    head += [f"**{plan.summary.line()}**", "", "| Action | Address | Fields |", "| --- | --- | --- |"]
    for c in pending:
        detail = c.reason or (f"{len(c.diffs)} changed" if c.diffs and c.action == UPDATE else "")
        head.append(f"| {ICON[c.action]} | `{_cell(c.address)}` | {_cell(detail)} |")
    body = []
    for c in pending:
        for line in change_lines(c):
            body.append(f"{DIFF_MARK[line.symbol]} {'    ' * line.indent}{line.text}")
    opening = "\n".join(head + ["", "<details><summary>Field changes</summary>", "", "```diff"])
    closing = "```\n\n</details>\n"
    text = opening + "\n" + "\n".join(body) + "\n" + closing
    if len(text) <= limit:
        return text
    note_tpl = ("\n> **Note:** output truncated: {n} of {total} change lines shown (comment limit {limit:,} "
                "characters). Run `claractl show` on the plan file for the whole plan.\n")
    budget = limit - len(opening) - len(closing) - len(note_tpl) - 40
    kept, used = [], 0
    for line in body:
        if used + len(line) + 1 > budget:
            break
        kept.append(line)
        used += len(line) + 1
    return (opening + "\n" + "\n".join(kept) + "\n" + closing +
            note_tpl.format(n=len(kept), total=len(body), limit=limit))
