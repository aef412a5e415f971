"""High availability as rendered (no cluster): `services.platform.high-availability` turns the one
Recreate pod into three rolling Deployments on PostgreSQL; the project file refuses what cannot
work; `plan` says which pods an update rolls."""

from __future__ import annotations

import json

import pytest

from claractl.project.loader import load_project
from claractl.project.model import ProjectError
from claractl.targets.kubernetes.manifests import desired_objects
from claractl.targets.kubernetes.rules import change_group, rollout_note
from conftest import blueprint_services, make_project


def ha_services(**platform) -> dict:
    services = blueprint_services()
    services["triton"]["gpus"] = 0
    services["platform"].update({"high-availability": True, "database": "postgresql", **platform})
    return services


def rendered(services: dict) -> dict[str, dict]:
    return {o.address: o.manifest for o in desired_objects(make_project(services), reveal_secrets=False)}


def test_the_platform_becomes_three_rolling_deployments_with_budgets_and_spread():
    objects = rendered(ha_services())
    deployments = {a.rsplit("/", 1)[1]: m for a, m in objects.items() if "/Deployment/clara-platform" in a}
    assert set(deployments) == {"clara-platform", "clara-platform-engine", "clara-platform-dicom"}
    for name, role in (("clara-platform", "api"), ("clara-platform-engine", "engine"), ("clara-platform-dicom", "dicom")):
        spec = deployments[name]["spec"]
        assert spec["replicas"] == 2
        assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
        assert spec["selector"]["matchLabels"]["app.kubernetes.io/component"] == role   # roles never select each other
        pod = spec["template"]["spec"]
        command = pod["containers"][0]["command"]
        assert command[-4:] == ["--roles", role, "--replica", "$(CLARA_POD_NAME)"]
        term = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
        assert term["podAffinityTerm"]["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == role
        budget = objects[f"service.platform/PodDisruptionBudget/{name}"]["spec"]
        assert budget == {"maxUnavailable": 1, "selector": spec["selector"]}
    dicom = deployments["clara-platform-dicom"]["spec"]["template"]["spec"]
    assert dicom["containers"][0]["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]
    assert dicom["terminationGracePeriodSeconds"] == 5 + 600 + 30        # preStop + drain + closing the groups
    assert objects["service.platform/PersistentVolumeClaim/clara-platform-data"]["spec"]["accessModes"] == ["ReadWriteMany"]


def test_services_select_their_role_and_a_sender_sticks_to_one_receiver():
    objects = rendered(ha_services())
    api = objects["service.platform/Service/clara-platform"]["spec"]
    assert api["selector"]["app.kubernetes.io/component"] == "api"
    dicom = objects["service.dicom-adapter/Service/clara-dicom-adapter"]["spec"]
    assert dicom["selector"]["app.kubernetes.io/component"] == "dicom" and dicom["sessionAffinity"] == "ClientIP"
    assert objects["service.render/Service/clara-render"]["spec"]["selector"]["app.kubernetes.io/component"] == "api"


def test_settings_say_shared_state_and_leader_election_and_the_engine_may_hold_a_lease():
    objects = rendered(ha_services())
    config = json.loads(objects["service.platform/ConfigMap/clara-platform"]["data"]["platform.json"])
    assert config["cluster"] == {"shared_state": True, "leader_election": True,
                                 "lease_name": "clara-platform-engine-leader", "lease_seconds": 15}
    assert config["dicom"]["drain_seconds"] == 600
    rules = objects["service.platform/Role/clara-platform"]["rules"]
    assert {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
            "verbs": ["get", "create", "update", "delete"]} in rules


def test_the_projects_postgresql_is_a_statefulset_whose_password_never_leaves_its_secret():
    objects = rendered(ha_services())
    statefulset = objects["service.postgresql/StatefulSet/clara-postgresql"]
    assert change_group("StatefulSet") < change_group("Deployment")       # ready before the platform starts
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "claractl/postgresql:0.1.0"
    env = {e["name"]: e for e in container["env"]}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "clara-postgresql", "key": "password"}
    claim = statefulset["spec"]["volumeClaimTemplates"][0]
    assert "claractl.dev/project" not in claim["metadata"]["labels"]      # the StatefulSet's, never pruned alone
    assert statefulset["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"
    for name in ("clara-platform", "clara-platform-engine", "clara-platform-dicom"):
        env = {e["name"]: e for e in objects[f"service.platform/Deployment/{name}"]["spec"]["template"]["spec"]
               ["containers"][0]["env"]}
        assert env["CLARA_DATABASE_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "clara-postgresql"
        assert env["CLARA_DATABASE_URL"]["value"] == \
            "postgresql+psycopg://clara:$(CLARA_DATABASE_PASSWORD)@clara-postgresql:5432/clara"
    text = json.dumps(objects)
    assert "clara-postgresql" in text and "Secret/clara-postgresql" not in " ".join(objects)   # generated at apply


def test_replica_counts_and_drain_come_from_the_project():
    services = ha_services(**{"replicas": 3, "engine-replicas": 1})
    services["dicom-adapter"].update({"replicas": 4, "drain-seconds": 1200})
    objects = rendered(services)
    assert objects["service.platform/Deployment/clara-platform"]["spec"]["replicas"] == 3
    assert objects["service.platform/Deployment/clara-platform-engine"]["spec"]["replicas"] == 1
    assert "service.platform/PodDisruptionBudget/clara-platform-engine" not in objects   # one pod: nothing to budget
    dicom = objects["service.platform/Deployment/clara-platform-dicom"]["spec"]
    assert dicom["replicas"] == 4 and dicom["template"]["spec"]["terminationGracePeriodSeconds"] == 1235


def test_without_high_availability_the_one_recreate_pod_is_unchanged():
    objects = rendered({**blueprint_services()})
    deployment = objects["service.platform/Deployment/clara-platform"]["spec"]
    assert deployment["replicas"] == 1 and deployment["strategy"] == {"type": "Recreate"}
    assert not [a for a in objects if "PodDisruptionBudget" in a or "postgresql" in a]


def project_file(tmp_path, target: str, platform: str, extra: str = "") -> str:
    path = tmp_path / "clara.yaml"
    path.write_text(f"apiVersion: claractl/v1\nkind: Project\nname: ha\n"
                    f"target: {target}\nservices:\n  platform: {platform}\n{extra}")
    return str(path)


KUBE = "{type: kubernetes, kubernetes: {namespace: clara}}"


@pytest.mark.parametrize("target,platform,extra,key,message", [
    (KUBE, "{high-availability: true}", "", "services.platform.high-availability", "needs PostgreSQL"),
    (KUBE, "{high-availability: true, database: sqlite}", "", "services.platform.database", "needs PostgreSQL"),
    ("{type: local}", "{high-availability: true, database: postgresql}", "", "services.platform.high-availability",
     "kubernetes target only"),
    ("{type: local}", "{database: postgresql}", "", "services.platform.database", "postgresql://"),
    (KUBE, "{replicas: 3}", "", "services.platform.replicas", "only used with services.platform.high-availability"),
    (KUBE, "{}", "  dicom-adapter: {drain-seconds: 30}\n", "services.dicom-adapter.drain-seconds",
     "only used with services.platform.high-availability"),
    (KUBE, "{database: sqlite}", "  postgresql: {storage-size: 5Gi}\n", "services.postgresql",
     "only used with services.platform.database: postgresql"),
])
def test_the_project_file_refuses_what_cannot_work(tmp_path, target, platform, extra, key, message):
    with pytest.raises(ProjectError) as err:
        load_project(project_file(tmp_path, target, platform, extra))
    found = {d.key_path: d.message for d in err.value.diagnostics}
    assert message in found.get(key, ""), err.value.diagnostics
    assert all(k.startswith("services.platform") or k == key for k in found), err.value.diagnostics


def test_a_high_availability_project_file_loads(tmp_path):
    path = project_file(tmp_path, KUBE, "{high-availability: true, database: postgresql, replicas: 3}",
                        "  dicom-adapter: {replicas: 2, drain-seconds: 900}\n  postgresql: {storage-size: 5Gi}\n")
    project = load_project(path)
    assert project.services["platform"]["high-availability"] is True


@pytest.mark.parametrize("spec,paths,expected", [
    ({"replicas": 2, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}},
     [("spec", "template", "metadata", "annotations", "checksum/config")],
     "rolls 2 pods one at a time, each new pod ready before an old one stops (x stays up)"),
    ({"replicas": 1, "strategy": {"type": "Recreate"}}, [("spec", "template", "spec", "containers")],
     "restarts its pod: x is down until the new pod is ready (strategy Recreate)"),
    ({"replicas": 3}, [("spec", "template", "spec")], "rolls 3 pods, up to 25% of them unavailable at a time"),
    ({"replicas": 2}, [("spec", "replicas")], None),                  # scaling rolls nothing
])
def test_plan_says_which_pods_an_update_rolls(spec, paths, expected):
    manifest = {"kind": "Deployment", "metadata": {"name": "x"}, "spec": spec}
    assert rollout_note(manifest, paths) == expected
