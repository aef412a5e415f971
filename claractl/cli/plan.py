"""plan, apply, destroy, show, force-unlock: parse options, call the engine, print.

Exit codes: 0 success (and "no changes" with --detailed-exitcode), 1 error, 2 changes present
(only with --detailed-exitcode).
"""

from __future__ import annotations

import re
import sys
import time
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Callable, List, Optional

import typer

from claractl.cli import console as cli_console

FILE_HELP = "Project file (default: clara.yaml in the current directory)."
ONLY_HELP = "Plan only this address, kind (`pipeline`) or prefix; repeatable."
EXCLUDE_HELP = "Leave out this address, kind or prefix; repeatable."


class Output(str, Enum):
    text = "text"
    json = "json"
    markdown = "markdown"


class Failed(Exception):
    """An error already worded for the user; exit 1."""


def _duration(text: str, option: str = "--lock-timeout") -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", text or "0")
    if not m:
        raise typer.BadParameter(f"{text!r} is not a duration (e.g. 30s, 2m)", param_hint=option)
    return float(m[1]) * {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[m[2]]


def _load(file: Optional[str], fallback: str = ""):
    from claractl.project import load_project

    path = Path(file) if file else Path("clara.yaml")
    if not file and not path.exists() and fallback:
        path = Path(fallback)
    if not path.exists():
        raise Failed(f"{path}: project file not found (use -f FILE)")
    return load_project(path)


def _run(body: Callable[[], int]) -> None:
    """Map known errors to a message and exit 1; never a traceback for bad input."""
    from rich.markup import escape

    from claractl.plan import PlanError
    from claractl.project.model import ProjectError

    try:
        code = body()
    except ProjectError as exc:
        for d in exc.diagnostics:
            cli_console.err_console.print(f"[red]Error:[/red] {escape(str(d))}", markup=True, highlight=False)
        raise typer.Exit(1)
    except (PlanError, Failed, OSError) as exc:
        # escape: messages quote things like `pip install 'claractl[helm]'`, not rich markup
        cli_console.err_console.print(f"[red]Error:[/red] {escape(str(exc))}", markup=True, highlight=False,
                                      soft_wrap=True)
        raise typer.Exit(1)
    raise typer.Exit(code)


def _print_plan(plan, output: Output, verbose: bool = False) -> None:
    from claractl.plan.render import render_json, render_markdown, render_text

    if output is Output.json:
        sys.stdout.write(render_json(plan))
    elif output is Output.markdown:
        sys.stdout.write(render_markdown(plan))
    else:
        cli_console.console.print(render_text(plan, verbose=verbose or cli_console.verbosity > 0), end="", soft_wrap=True)


def _confirm(auto_approve: bool, what: str) -> None:
    if auto_approve:
        return
    if cli_console.is_ci() or not sys.stdin.isatty():
        raise Failed(f"refusing to {what} without confirmation in a non-interactive run; "
                     "pass --auto-approve or apply a saved plan file")
    answer = typer.prompt(f"Do you want to {what}? Only 'yes' will be accepted", default="", show_default=False)
    if answer.strip() != "yes":
        raise Failed(f"{what} cancelled")


def _progress(con, advance: Callable[[], None] = lambda: None):
    """One line per change as it starts and ends (safe to call from the apply threads)."""
    started: dict[str, float] = {}
    verbs = {"create": "creating", "update": "updating", "replace": "replacing", "delete": "deleting"}

    def on_event(phase: str, change, message: Optional[str]) -> None:
        if phase == "start":
            started[change.address] = time.monotonic()
            con.print(f"{change.address}: {verbs.get(change.action, change.action)}…", highlight=False)
            return
        if phase == "progress":            # what a running change waits for (pod-level reasons)
            took = time.monotonic() - started.get(change.address, time.monotonic())
            con.print(f"{change.address}: {message} ({took:.0f} s)", style="dim", highlight=False, markup=False)
            return
        took = time.monotonic() - started.get(change.address, time.monotonic())
        if phase == "done":
            con.print(f"[green]{change.address}: {change.action} done[/green] ({took:.1f} s)", highlight=False)
        else:
            con.print(f"[red]{change.address}: {change.action} failed[/red] after {took:.1f} s: {message}",
                      highlight=False, markup=True)
        advance()
    return on_event


def _execute(target, plan, parallelism: int) -> int:
    """Apply the plan with progress; the result line says Apply or Destroy."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from claractl.plan.render import render_apply_result
    from claractl.targets import execute

    con = cli_console.console
    if con.is_terminal and not cli_console.is_ci():
        # A live bar under the lines on a terminal; plain lines in CI and in logs.
        columns = (SpinnerColumn(), TextColumn("Applying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=con, transient=True) as progress:
            task = progress.add_task("apply", total=len(plan.pending))
            result = execute(target, plan, parallelism=parallelism,
                             on_event=_progress(progress.console, lambda: progress.advance(task)))
    else:
        result = execute(target, plan, parallelism=parallelism, on_event=_progress(con))
    con.print(render_apply_result(result, destroy=plan.destroy), end="")
    return 0 if result.ok else 1


@contextmanager
def _locked(target, timeout: float):
    """The apply lock, saying so when it replaced the stale lock of an apply that was killed."""
    from claractl.targets import locked

    with locked(target, timeout) as lock:
        if lock.took_over is not None:
            cli_console.err_console.print(
                f"Warning: took over the apply lock {lock.took_over.lock_id} of {lock.took_over.holder}, "
                "which is no longer running; this apply finishes what it left.", highlight=False)
        yield lock


def _plan_confirm_execute(target, timeout: float, auto_approve: bool, what: str, parallelism: int,
                          **plan_options) -> int:
    """apply and destroy without a saved plan: under the lock, plan, show it, confirm, execute."""
    from claractl.targets import make_plan

    with _locked(target, timeout):
        plan = make_plan(target, **plan_options)
        _print_plan(plan, Output.text)
        if not plan.has_changes:
            return 0
        _confirm(auto_approve, what)
        return _execute(target, plan, parallelism)


def _options(target, force_conflicts: bool = False, wait: bool = True, timeout: Optional[float] = None):
    """Apply options on the target; refuse one the target does not have."""
    if force_conflicts:
        if not hasattr(target, "force_conflicts"):
            raise Failed(f"--force-conflicts applies to the kubernetes target, not {target.type}")
        target.force_conflicts = True
    target.wait = wait
    target.wait_timeout = timeout
    return target


def register(app: typer.Typer) -> None:
    """Add plan, apply, destroy, show and force-unlock to the root app."""

    @app.command("plan")
    def plan_cmd(
        file: Optional[str] = typer.Option(None, "-f", "--file", metavar="FILE", help=FILE_HELP),
        out: Optional[str] = typer.Option(None, "--out", metavar="FILE", help="Save the plan to this file for `claractl apply FILE`."),
        output: Output = typer.Option(Output.text, "-o", "--output", help="text, json or markdown."),
        detailed_exitcode: bool = typer.Option(False, "--detailed-exitcode", help="Exit 0 no changes, 1 error, 2 changes."),
        only: List[str] = typer.Option([], "--only", metavar="ADDRESS", help=ONLY_HELP),
        exclude: List[str] = typer.Option([], "--exclude", metavar="ADDRESS", help=EXCLUDE_HELP),
        destroy: bool = typer.Option(False, "--destroy", help="Plan the removal of everything the project manages."),
        verbose: bool = typer.Option(False, "-v", "--verbose", help="Also list objects this project does not manage."),
    ) -> None:
        """Show what apply would change: the project compared with the target, read live.

        \b
        Examples:
          claractl plan                          # clara.yaml in this directory
          claractl -C my-project plan --only pipeline
          claractl plan -o markdown              # for a pull-request comment
          claractl plan --detailed-exitcode      # CI: exit 2 when there are changes
          claractl plan --out release.plan && claractl apply release.plan
        """
        def body() -> int:
            from claractl.plan import write_plan
            from claractl.targets import get_target, make_plan

            target = get_target(_load(file))
            plan = make_plan(target, destroy=destroy, only=only, exclude=exclude)
            if out:
                write_plan(plan, out)
            _print_plan(plan, output, verbose)
            if out and output is Output.text:
                cli_console.console.print(f"\nSaved the plan to {out}. Apply exactly this plan with "
                                          f"`claractl apply {out}`.", highlight=False)
            return 2 if detailed_exitcode and plan.has_changes else 0
        _run(body)

    @app.command("apply")
    def apply_cmd(
        plan_file: Optional[str] = typer.Argument(None, metavar="PLAN_FILE", help="A plan saved with `plan --out`; applied exactly."),
        file: Optional[str] = typer.Option(None, "-f", "--file", metavar="FILE", help=FILE_HELP),
        auto_approve: bool = typer.Option(False, "--auto-approve", help="Do not ask for confirmation."),
        only: List[str] = typer.Option([], "--only", metavar="ADDRESS", help=ONLY_HELP),
        exclude: List[str] = typer.Option([], "--exclude", metavar="ADDRESS", help=EXCLUDE_HELP),
        parallelism: int = typer.Option(10, "--parallelism", min=1, metavar="N", help="Changes applied at the same time."),
        lock_timeout: str = typer.Option("0s", "--lock-timeout", metavar="DURATION", help="Wait this long for another apply (e.g. 30s, 2m)."),
        force_conflicts: bool = typer.Option(False, "--force-conflicts",
                                             help="kubernetes: take over fields another field manager changed."),
        wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait for each object to be healthy (Deployments available, models loaded)."),
        timeout: Optional[str] = typer.Option(None, "--timeout", metavar="DURATION",
                                              help="How long to wait for each object (default 5m; e.g. 90s, 10m)."),
    ) -> None:
        """Make the target match the project, in dependency order, waiting for health.

        Without PLAN_FILE it plans, shows the plan and asks for `yes` (--auto-approve in scripts);
        with PLAN_FILE it applies exactly that plan, refusing it when the target or the project
        changed since.

        \b
        Examples:
          claractl apply                         # plan, confirm, apply
          claractl -C my-project apply --auto-approve
          claractl apply release.plan            # a plan saved with `plan --out`
          claractl apply --lock-timeout 2m       # wait for another apply
          claractl apply --no-wait               # do not wait for health
        """
        lock_wait = _duration(lock_timeout)
        wait_timeout = _duration(timeout, "--timeout") if timeout else None

        def body() -> int:
            from claractl.plan import read_plan
            from claractl.targets import get_target, verify_plan

            if plan_file:
                if only or exclude:
                    raise Failed("--only/--exclude belong to `plan`; a saved plan is applied exactly as saved")
                plan = read_plan(plan_file)
                target = _options(get_target(_load(file, fallback=plan.project_file)), force_conflicts,
                                  wait, wait_timeout)
                with _locked(target, lock_wait):
                    verify_plan(target, plan)
                    if not plan.has_changes:
                        cli_console.console.print("No changes. Nothing to apply.", highlight=False)
                        return 0
                    _print_plan(plan, Output.text)
                    return _execute(target, plan, parallelism)
            target = _options(get_target(_load(file)), force_conflicts, wait, wait_timeout)
            return _plan_confirm_execute(target, lock_wait, auto_approve, "perform these actions", parallelism,
                                         only=only, exclude=exclude)
        _run(body)

    @app.command("destroy")
    def destroy_cmd(
        file: Optional[str] = typer.Option(None, "-f", "--file", metavar="FILE", help=FILE_HELP),
        auto_approve: bool = typer.Option(False, "--auto-approve", help="Do not ask for confirmation."),
        parallelism: int = typer.Option(10, "--parallelism", min=1, metavar="N", help="Changes applied at the same time."),
        lock_timeout: str = typer.Option("0s", "--lock-timeout", metavar="DURATION", help="Wait this long for another apply."),
        wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait until each deleted object is gone (pods stopped, volumes released)."),
        timeout: Optional[str] = typer.Option(None, "--timeout", metavar="DURATION",
                                              help="How long to wait for each object (default 5m; e.g. 90s, 10m)."),
    ) -> None:
        """Remove everything this project manages; objects made by hand or by other projects stay."""
        lock_wait = _duration(lock_timeout)
        wait_timeout = _duration(timeout, "--timeout") if timeout else None

        def body() -> int:
            from claractl.targets import get_target

            target = _options(get_target(_load(file)), wait=wait, timeout=wait_timeout)
            return _plan_confirm_execute(target, lock_wait, auto_approve, "destroy everything this project manages",
                                         parallelism, destroy=True)
        _run(body)

    @app.command("show")
    def show_cmd(
        plan_file: str = typer.Argument(..., help="A plan saved with `plan --out`."),
        output: Output = typer.Option(Output.text, "-o", "--output", help="text, json or markdown."),
    ) -> None:
        """Print a saved plan."""
        def body() -> int:
            from claractl.plan import read_plan

            _print_plan(read_plan(plan_file), output)
            return 0
        _run(body)

    @app.command("force-unlock")
    def force_unlock_cmd(
        lock_id: str = typer.Argument(..., help="The lock ID printed by the apply that is waiting."),
        file: Optional[str] = typer.Option(None, "-f", "--file", metavar="FILE", help=FILE_HELP),
    ) -> None:
        """Release an apply lock left by a process that is gone."""
        def body() -> int:
            from claractl.targets import get_target

            target = get_target(_load(file))
            target.force_unlock(lock_id)
            cli_console.console.print(f"Released apply lock {lock_id} on {target.scope}.", highlight=False)
            return 0
        _run(body)
