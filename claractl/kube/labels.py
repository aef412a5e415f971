"""The labels by which claractl finds (and prunes) what a project owns on a cluster, and nothing else."""

PROJECT_LABEL = "claractl.dev/project"      # on every object a project applies
SERVICE_LABEL = "claractl.dev/service"      # which service's chart rendered it (its address)
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGER = "claractl"


def inventory_selector(project_name: str) -> str:
    return f"{PROJECT_LABEL}={project_name}"
