"""`claractl render`: write the kubernetes manifests (one file per service) for GitOps."""

from __future__ import annotations

from typing import Optional

import typer

from claractl.project import DEFAULT_FILE


def register(app: typer.Typer) -> None:
    @app.command()
    def render(
        output_dir_arg: Optional[str] = typer.Argument(None, metavar="DIR", help="Where to write the manifests."),
        file: str = typer.Option(DEFAULT_FILE, "-f", "--file", metavar="FILE", help="Project file."),
        output_dir: Optional[str] = typer.Option(None, "--output-dir", metavar="DIR", help="Where to write the manifests (same as DIR)."),
    ) -> None:
        """Write the Kubernetes manifests of every enabled service, for GitOps (Argo CD, Flux).

        Each service's Helm chart is rendered with values from the project into DIR/<service>.yaml;
        with no DIR, all manifests go to stdout. Secret values are never written: the Secrets the
        manifests reference are listed on stderr."""
        from claractl.project import ProjectError, load_project
        from claractl.targets.kubernetes import gitops
        from claractl.targets.kubernetes.helm import HelmError

        directory = output_dir or output_dir_arg
        try:
            project = load_project(file)
            if directory:
                for path in gitops.write_manifests(project, directory):
                    typer.echo(f"wrote {path}")
            else:
                objects = [o.manifest for objs in gitops.manifests_by_service(project).values() for o in objs]
                typer.echo(gitops.to_yaml(objects), nl=False)
        except ProjectError as exc:
            for diagnostic in exc.diagnostics:
                typer.echo(str(diagnostic), err=True)
            raise typer.Exit(1)
        except (HelmError, OSError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1)
        for secret in gitops.secrets_to_create(project):
            typer.echo(f"note: create Secret {secret} in the namespace before syncing", err=True)
