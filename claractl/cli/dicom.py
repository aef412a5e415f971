"""`claractl dicom echo|send|status`: parse, call claractl.platform.dicom, print."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import List, Optional

import typer

from claractl.cli import console as cli_console

dicom_app = typer.Typer(help="Talk DICOM: verify peers, send files, show the adapter status.",
                        no_args_is_help=True)


TlsOpt = typer.Option(False, "--tls", help="DICOM over TLS (the peer's certificate is verified).")
TlsCaOpt = typer.Option(None, "--tls-ca", metavar="PEM", help="CA certificates to verify the peer with (default: the system's).")
TlsCertOpt = typer.Option(None, "--tls-cert", metavar="PEM", help="Our client certificate, for a peer that requires one.")
TlsKeyOpt = typer.Option(None, "--tls-key", metavar="PEM", help="Its private key.")


def _peer(text: str, tls: bool = False, ca: Optional[Path] = None, cert: Optional[Path] = None,
          key: Optional[Path] = None):
    import dataclasses

    from claractl.platform.dicom.scu import parse_peer
    from claractl.platform.dicom.tls import TlsConfigError, peer_context
    try:
        peer = parse_peer(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc))
    if not (tls or ca or cert or key):
        return peer
    if bool(cert) != bool(key):
        raise typer.BadParameter("--tls-cert and --tls-key go together (a client certificate needs its key)")
    try:
        context = peer_context(str(ca or ""), str(cert or ""), str(key or ""))
    except TlsConfigError as exc:
        raise typer.BadParameter(str(exc))
    return dataclasses.replace(peer, tls=context)


@dicom_app.command()
def echo(
    address: str = typer.Argument(..., metavar="AE@HOST:PORT", help="The peer to verify."),
    calling_ae: str = typer.Option("CLARACTL", "--calling-ae", help="Our AE title."),
    tls: bool = TlsOpt, tls_ca: Optional[Path] = TlsCaOpt, tls_cert: Optional[Path] = TlsCertOpt,
    tls_key: Optional[Path] = TlsKeyOpt,
) -> None:
    """C-ECHO a DICOM peer."""
    from claractl.platform.dicom.scu import DicomPeerError, echo as do_echo
    peer = _peer(address, tls, tls_ca, tls_cert, tls_key)
    try:
        status = do_echo(peer, calling_ae=calling_ae)
    except DicomPeerError as exc:
        cli_console.err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1)
    cli_console.console.print(f"C-ECHO {peer}: {status}")


@dicom_app.command()
def send(
    paths: List[Path] = typer.Argument(..., help="DICOM files or directories (searched recursively)."),
    to: str = typer.Option(..., "--to", metavar="AE@HOST:PORT", help="Destination."),
    calling_ae: str = typer.Option("CLARACTL", "--calling-ae", help="Our AE title."),
    associations: int = typer.Option(1, "--associations", "-j", min=1, max=32, help="Parallel associations."),
    as_json: bool = typer.Option(False, "--json", help="Print every file's status as JSON instead (no progress bar)."),
    tls: bool = TlsOpt, tls_ca: Optional[Path] = TlsCaOpt, tls_cert: Optional[Path] = TlsCertOpt,
    tls_key: Optional[Path] = TlsKeyOpt,
) -> None:
    """C-STORE files to a peer, with a progress bar and a summary of statuses."""
    from claractl.platform.dicom.scu import collect_files, send_files
    peer = _peer(to, tls, tls_ca, tls_cert, tls_key)
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        cli_console.err_console.print(f"[red]error:[/] no such file or directory: {', '.join(missing)}")
        raise typer.Exit(2)
    files = collect_files(paths)
    if not files:
        cli_console.err_console.print("[red]error:[/] no DICOM files (Part 10, with 'DICM' preamble) found")
        raise typer.Exit(2)
    if as_json:
        import json
        results = send_files(peer, files, calling_ae=calling_ae, associations=associations)
        typer.echo(json.dumps({"peer": str(peer), "accepted": sum(r.ok for r in results), "total": len(results),
                               "results": [{"path": str(r.path), "status": r.status, "message": r.message}
                                           for r in results]}, indent=2))
        raise typer.Exit(0 if all(r.ok for r in results) else 1)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=cli_console.console, transient=False) as progress:
        bar = progress.add_task(f"sending to {peer}", total=len(files))
        results = send_files(peer, files, calling_ae=calling_ae, associations=associations,
                             on_done=lambda r: progress.advance(bar))
    counts = Counter(r.message for r in results)
    for message, n in counts.most_common():
        cli_console.console.print(f"  {n:6d}  {message}")
    failed = [r for r in results if not r.ok]
    for r in failed[:10]:
        cli_console.err_console.print(f"[red]failed:[/] {r.path}: {r.message}")
    if len(failed) > 10:
        cli_console.err_console.print(f"… and {len(failed) - 10} more")
    cli_console.console.print(f"{len(results) - len(failed)} of {len(results)} instances accepted by {peer}")
    if failed:
        raise typer.Exit(1)


@dicom_app.command()
def status(
    api: Optional[str] = typer.Option(None, "--api", help="Platform API URL (default: from the state dir)."),
    state_dir: str = typer.Option(".clara", "--state-dir", help="State dir of a local platform."),
    as_json: bool = typer.Option(False, "--json", help="Print the raw status document."),
) -> None:
    """Associations, open groups and instances received by the running DICOM adapter."""
    import json
    from claractl.platform.config import PlatformConfig
    from claractl.platform.dicom.status_client import StatusUnavailable, fetch_status
    token = None
    if api is None:
        config = PlatformConfig.load(state_dir)
        api = config.api_url
        try:
            from claractl.platform.api.auth import read_token
            token = read_token(config)
        except Exception:
            token = None
    try:
        doc = fetch_status(api, token)
    except StatusUnavailable as exc:
        cli_console.err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(doc, indent=2, sort_keys=True))
        return
    c = cli_console.console
    c.print(f"DICOM adapter {doc.get('ae_title')} on port {doc.get('port')}: "
            f"{'running' if doc.get('running') else 'stopped'}")
    for key in ("associations_active", "connections_open", "groups_open", "instances_received", "bytes_received", "jobs_created",
                "associations_accepted", "associations_rejected", "store_failures", "out_of_resources"):
        c.print(f"  {key.replace('_', ' '):24s} {doc.get(key, 0)}")
    for g in doc.get("groups", []):
        c.print(f"  group {g['called_ae']}/{g['key']}: {g['instances']} instances, idle {g['idle_s']}s")
    export = doc.get("export")
    if export:
        c.print(f"  export agent: {export.get('tasks_succeeded', 0)} tasks succeeded, "
                f"{export.get('tasks_failed', 0)} failed, {export.get('files_sent', 0)} files sent")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(dicom_app, name="dicom")
