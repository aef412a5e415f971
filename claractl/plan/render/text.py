"""Terraform-like text: one header per change with its symbol, field diffs below, a summary line.
Returns a rich `Text`; the CLI decides about colour (NO_COLOR, not a TTY, CI)."""

from __future__ import annotations

from rich.text import Text

from claractl.plan.graph import ApplyResult
from claractl.plan.model import Plan
from claractl.plan.render.lines import change_lines


def render_text(plan: Plan, verbose: bool = False) -> Text:
    out = Text()
    for w in plan.warnings:
        out.append("Warning: ", style="bold yellow")
        out.append(w + "\n\n")
    for n in plan.notes:
        out.append(f"Note: {n}\n", style="dim")
    if plan.notes:
        out.append("\n")
    pending = plan.pending
    if not pending:
        out.append("No changes. ", style="bold green")
        out.append(f"The {plan.target} target matches project {plan.project}.\n")
    else:
        if plan.destroy:
            out.append(f"claractl will destroy everything project {plan.project} manages on target {plan.target}:\n\n")
        else:
            out.append(f"claractl will change the target for project {plan.project} on target {plan.target}:\n\n")
        for c in pending:
            for line in change_lines(c):
                pad = "  " + "    " * line.indent
                out.append(pad)
                out.append(f"{line.symbol} ", style=line.style)
                out.append(line.text + "\n", style="bold" if line.indent == 0 else "")
            out.append("\n")
        out.append(plan.summary.line() + "\n", style="bold")
    if verbose and plan.unmanaged:
        out.append("\nNot managed by this project (never changed or deleted):\n")
        for u in plan.unmanaged:
            owner = f"project {u['owner']}" if u.get("owner") else "made by hand"
            out.append(f"  ? {u['address']} ({owner})\n", style="dim")
    return out


def render_apply_result(result: ApplyResult, destroy: bool = False) -> Text:
    out = Text()
    word = "Destroy" if destroy else "Apply"
    if result.ok:
        done = f"{len(result.done)} objects destroyed" if destroy else f"{len(result.done)} changes applied"
        out.append(f"{word} complete: {done}.\n", style="bold green")
        return out
    out.append(f"{word} failed.\n", style="bold red")
    for address, message in result.failed:
        out.append(f"  ✗ {address}: {message}\n", style="red")
    out.append(f"Done ({len(result.done)}): {', '.join(result.done) or '-'}\n")
    out.append(f"Not done ({len(result.not_done)}): {', '.join(result.not_done) or '-'}\n")
    out.append("Run `claractl plan` to see what is left; the next apply finishes the job.\n")
    return out
