"""The Kubernetes manifests (role kubernetes_manifests): rendered by the real playbook, validated offline
against the Kubernetes schemas, and held to the appliance's policies - non-root, read-only root filesystems,
requests and limits, secrets only in Secrets, NetworkPolicies that deny by default and allow only the seed
graph's edges. No cluster runs here: nothing is applied (docs/kubernetes.md)."""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path
from typing import Any

import pymysql
import pytest
import yaml
from k8s_mariadb import init_file_server
from k8s_render import (
    MARIADB_TAG,
    REGISTRY,
    TAG,
    Rendered,
    ansible_playbook,
    make_secrets,
    pod_specs,
    run_playbook,
    secret_data,
    write_inventory,
)

from harness import in_ci
from harness.mariadb import MariaDBUnavailable, find_binaries

kubernetes_validate = pytest.importorskip("kubernetes_validate")

# The oldest Kubernetes release the manifests support, and the newest the validator knows.
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())

EXTERNAL_OVERLAY = {
    "kubernetes_manifests_database": "external",
    "kubernetes_manifests_db_external_host": "db.example.org",
    "kubernetes_manifests_db_external_cidrs": ["192.0.2.11/32"],
    "kubernetes_manifests_qpid_db_host": "qpid-db.example.org",
    "kubernetes_manifests_qpid_db_cidrs": ["192.0.2.12/32"],
}

# Containers that may not have a read-only root filesystem: (workload, container) -> why. None today; an
# entry here must say why, and one that no longer applies fails test_allow_list_is_current.
WRITABLE_ROOT_ALLOWED: dict[tuple[str, str], str] = {}

# The seed graph's edges inside the namespace (plus the migration Job's), as the policies must allow them.
SERVER, DB, REAPER = "jobmon-server", "jobmon-mariadb", "jobmon-reaper"
QPID, MIGRATE = "jobmon-qpid", "jobmon-migrate"
INGRESS = "ingress-controller"
EXPECTED_EDGES = {
    (INGRESS, SERVER, 8080),   # jobmon clients and tasks -> nginx
    (REAPER, SERVER, 8080),    # workflow reaper -> nginx
    (SERVER, DB, 3306),        # State Manager (read-write), Query Service and Visualization (read-only)
    (QPID, DB, 3306),          # qpid integration -> jobmon database (max RSS)
    (MIGRATE, DB, 3306),       # migration Job -> jobmon database
}


def _render(tmp_path_factory: pytest.TempPathFactory, name: str, overlay: dict[str, Any]) -> Rendered:
    playbook = ansible_playbook()
    if playbook is None:
        if in_ci():
            pytest.fail("ansible-playbook not found (make deploy-venv)")
        pytest.skip("ansible-playbook not found (make deploy-venv)")
    work = tmp_path_factory.mktemp(name)
    values = make_secrets()
    inventory = write_inventory(work, values, overlay)
    rendered = Rendered(work / "manifests", values)
    first = run_playbook(playbook, inventory, rendered.dest)
    assert first.returncode == 0, first.output[-4000:]
    rendered.runs.append(first)
    return rendered


@pytest.fixture(scope="module")
def in_cluster(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    # A one-second grant event, so test_init_file_makes_the_roles_accounts need not wait a minute.
    return _render(tmp_path_factory, "in_cluster", {"kubernetes_manifests_qpid_grant_interval": 1})


@pytest.fixture(scope="module")
def external(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    return _render(tmp_path_factory, "external", EXTERNAL_OVERLAY)


@pytest.fixture(scope="module", params=["in_cluster", "external"])
def rendered(request: pytest.FixtureRequest) -> Rendered:
    return request.getfixturevalue(request.param)


def _inventory_of(rendered: Rendered) -> Path:
    return rendered.dest.parent / "inventory"


# -- the playbook ---------------------------------------------------------------------------------------


def test_second_run_changes_nothing_and_check_diff_works(in_cluster: Rendered) -> None:
    playbook = ansible_playbook()
    assert playbook
    again = run_playbook(playbook, _inventory_of(in_cluster), in_cluster.dest)
    assert again.returncode == 0, again.output[-4000:]
    assert again.changed == 0, again.output[-4000:]
    check = run_playbook(playbook, _inventory_of(in_cluster), in_cluster.dest, "--check", "--diff")
    assert check.returncode == 0, check.output[-4000:]
    assert check.changed == 0, check.output[-4000:]
    for run in (*in_cluster.runs, again, check):
        for name, value in in_cluster.secrets.items():
            assert value not in run.output, f"{name} printed by the playbook"


def test_secret_file_is_private_and_the_rest_readable(rendered: Rendered) -> None:
    modes = {path.name: path.stat().st_mode & 0o777 for path in rendered.files()}
    assert modes.pop("05-secrets.yaml") == 0o600
    assert modes
    assert set(modes.values()) == {0o644}


# -- schemas ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_document_validates_against_the_schemas(rendered: Rendered, version: str) -> None:
    docs = rendered.documents()
    assert len(docs) > 10
    for doc in docs:
        where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{where}, Kubernetes {version}: {error.message} at {list(error.path)}")


def test_every_namespaced_object_is_in_the_namespace(rendered: Rendered) -> None:
    for doc in rendered.documents():
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "jobmon", doc["metadata"]["name"]


# -- policies ---------------------------------------------------------------------------------------------


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def test_every_container_runs_as_non_root_read_only_and_restricted(rendered: Rendered) -> None:
    for workload, spec, _ in pod_specs(rendered.documents()):
        pod = spec.get("securityContext", {})
        assert pod.get("seccompProfile", {}).get("type") == "RuntimeDefault", workload
        assert spec.get("automountServiceAccountToken") is False, workload
        assert not spec.get("hostNetwork"), workload
        assert not spec.get("hostPID"), workload
        for container in _containers(spec):
            where = f"{workload}/{container['name']}"
            sc = {**pod, **container.get("securityContext", {})}
            assert sc.get("runAsNonRoot") is True, where
            assert sc.get("runAsUser", 1) != 0, where
            assert sc.get("runAsGroup", 1) != 0, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert not sc.get("privileged"), where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not sc.get("capabilities", {}).get("add"), where
            if (workload, container["name"]) in WRITABLE_ROOT_ALLOWED:
                continue
            assert sc.get("readOnlyRootFilesystem") is True, f"{where}: writable root filesystem"


def test_allow_list_is_current(in_cluster: Rendered) -> None:
    present = {(w, c["name"]) for w, spec, _ in pod_specs(in_cluster.documents()) for c in _containers(spec)}
    for key, reason in WRITABLE_ROOT_ALLOWED.items():
        assert key in present, key
        assert reason, key


def test_every_container_has_requests_and_limits(rendered: Rendered) -> None:
    for workload, spec, _ in pod_specs(rendered.documents()):
        for container in _containers(spec):
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                where = f"{workload}/{container['name']} {kind}"
                assert set(resources.get(kind, {})) >= {"cpu", "memory"}, where


def test_no_secret_outside_a_secret(rendered: Rendered) -> None:
    secrets = [doc for doc in rendered.documents() if doc["kind"] == "Secret"]
    in_secrets = "\n".join(v for doc in secrets for v in secret_data(doc).values())
    # Not vacuous: every inventory secret is used, in a Secret (the TLS key only as written, PEM).
    for name, value in rendered.secrets.items():
        if name == "jobmon_db_migrator_password":
            continue  # percent-encoded in URLs; checked below
        assert value in in_secrets, f"{name} not in any Secret"
    encoded = rendered.secrets["jobmon_db_migrator_password"].replace("'", "%27").replace("\\", "%5C")
    assert encoded.replace("/", "%2F") in in_secrets
    # Forms a value may leak in: as given, percent-encoded, SQL-escaped.
    forms = {f for v in rendered.secrets.values()
             for f in (v, v.replace("/", "%2F"), v.replace("'", "\\'"),
                       v.strip().splitlines()[1] if "\n" in v else v)}
    for doc in rendered.documents():
        if doc["kind"] == "Secret":
            continue
        text = yaml.safe_dump(doc)
        for form in forms:
            assert form not in text, f"a secret in {doc['kind']}/{doc['metadata']['name']}"
    for cm in rendered.of_kind("ConfigMap"):
        for key, value in cm["data"].items():
            assert "password" not in value.lower(), f"ConfigMap {key}"
            assert "db_url" not in value, f"ConfigMap {key}"
            for secret_value in (v for doc in secrets for v in secret_data(doc).values()):
                assert secret_value not in value, f"ConfigMap {cm['metadata']['name']}/{key}"


def test_each_container_mounts_only_its_own_credentials(in_cluster: Rendered) -> None:
    server = in_cluster.named("Deployment", SERVER)["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in server["volumes"]}
    for container in _containers(server):
        secrets_mounted = [volumes[m["name"]]["secret"]["secretName"] for m in container["volumeMounts"]
                           if "secret" in volumes[m["name"]]]
        expected = {"nginx": [], "state": ["jobmon-state"], "query": ["jobmon-query"], "viz": ["jobmon-viz"],
                    "wait-for-schema": ["jobmon-query"]}[container["name"]]
        assert secrets_mounted == expected, container["name"]


def _selected_name(selector: dict[str, Any]) -> str:
    labels = selector.get("matchLabels", {})
    assert labels, f"empty selector {selector}"
    return labels.get("app.kubernetes.io/name", "")


Edge = tuple[str, str, int]
Block = tuple[str, list[str], int]


def _edges(policies: list[dict[str, Any]]) -> tuple[set[Edge], list[Block]]:
    """In-namespace edges (from, to, port) the policies allow; ipBlock egress rules (from, cidrs, port)."""
    edges: set[Edge] = set()
    blocks: list[Block] = []
    for policy in policies:
        selector = policy["spec"]["podSelector"]
        if not selector:
            continue
        me = _selected_name(selector)
        for rule in policy["spec"].get("ingress", []):
            ports = [p["port"] for p in rule["ports"]]
            for peer in rule["from"]:
                source = INGRESS if "namespaceSelector" in peer else _selected_name(peer["podSelector"])
                edges.update((source, me, port) for port in ports)
        for rule in policy["spec"].get("egress", []):
            ports = [p["port"] for p in rule["ports"]]
            for peer in rule["to"]:
                if "ipBlock" in peer:
                    blocks.extend((me, [peer["ipBlock"]["cidr"]], port) for port in ports)
                else:
                    edges.update((me, _selected_name(peer["podSelector"]), port) for port in ports)
    return edges, blocks


def test_network_policies_deny_by_default(rendered: Rendered) -> None:
    policies = rendered.of_kind("NetworkPolicy")
    deny = [p for p in policies if p["spec"]["podSelector"] == {}
            and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress") and not p["spec"].get("egress")]
    assert len(deny) == 1, "one default-deny policy (ingress and egress) for every pod"
    # The only other policy for every pod: egress to the cluster DNS on port 53, nothing else.
    for policy in policies:
        if policy in deny or policy["spec"]["podSelector"]:
            continue
        assert policy["spec"]["policyTypes"] == ["Egress"]
        assert "ingress" not in policy["spec"]
        for rule in policy["spec"]["egress"]:
            assert {p["port"] for p in rule["ports"]} == {53}
            assert all("namespaceSelector" in peer and "podSelector" in peer for peer in rule["to"])
    # Every workload is selected by a policy of its own (so its allowed paths are written down).
    selected = {_selected_name(p["spec"]["podSelector"]) for p in policies if p["spec"]["podSelector"]}
    for _, _, labels in pod_specs(rendered.documents()):
        assert labels["app.kubernetes.io/name"] in selected


def test_network_policies_allow_only_the_seed_graph(in_cluster: Rendered) -> None:
    edges, blocks = _edges(in_cluster.of_kind("NetworkPolicy"))
    # An edge is allowed when the sender may send (egress) and the receiver may receive (ingress); the ingress
    # controller's own egress is not ours to set.
    assert edges == EXPECTED_EDGES
    assert blocks == [(REAPER, ["0.0.0.0/0"], 443)]  # workflow reaper -> Slack, HTTPS only


def test_external_database_is_reached_only_at_its_cidrs(external: Rendered) -> None:
    assert not external.of_kind("StatefulSet")
    assert not [d for d in external.of_kind("Secret") if d["metadata"]["name"] == "jobmon-mariadb-init"]
    edges, blocks = _edges(external.of_kind("NetworkPolicy"))
    assert edges == {(INGRESS, SERVER, 8080), (REAPER, SERVER, 8080)}
    db = {(who, cidr, port) for who, cidrs, port in blocks for cidr in cidrs if port == 3306}
    assert {(w, c) for w, c, _ in db} == {(SERVER, "192.0.2.11/32"), (MIGRATE, "192.0.2.11/32"),
                                          (QPID, "192.0.2.11/32"), (QPID, "192.0.2.12/32")}
    for _, cidrs, _ in blocks:
        for cidr in cidrs:
            ipaddress.ip_network(cidr)
    state = secret_data(external.named("Secret", "jobmon-state"))["jobmon.toml"]
    assert "@db.example.org:3306/jobmon" in state


# -- the appliance's shape --------------------------------------------------------------------------------


def test_images_are_the_roles_images_with_the_registry_prefix(rendered: Rendered) -> None:
    allowed = {f"{REGISTRY}jobmon-server:{TAG}", f"{REGISTRY}jobmon-mariadb:{MARIADB_TAG}"}
    images = {c["image"] for _, spec, _ in pod_specs(rendered.documents()) for c in _containers(spec)}
    assert images <= allowed
    assert f"{REGISTRY}jobmon-server:{TAG}" in images


def test_server_pod_probes_the_health_routes_and_has_a_disruption_budget(in_cluster: Rendered) -> None:
    deployment = in_cluster.named("Deployment", SERVER)
    spec = deployment["spec"]["template"]["spec"]
    by_name = {c["name"]: c for c in spec["containers"]}
    assert set(by_name) == {"nginx", "state", "query", "viz"}
    for service in ("state", "query", "viz"):
        assert by_name[service]["readinessProbe"]["httpGet"]["path"] == f"/api/{service}/health"
        assert "livenessProbe" in by_name[service]
        assert {"name": "JOBMON_SERVICES", "value": service} in by_name[service]["env"]
    assert by_name["nginx"]["livenessProbe"]["httpGet"]["path"] == "/nginx-health"
    pdb = in_cluster.named("PodDisruptionBudget", SERVER)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert deployment["spec"]["replicas"] > pdb["spec"]["minAvailable"]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_reaper_and_qpid_have_a_single_active_replica(rendered: Rendered) -> None:
    for name, command in ((REAPER, "jobmon-reaper"), (QPID, "jobmon-qpid")):
        deployment = rendered.named("Deployment", name)
        assert deployment["spec"]["replicas"] == 1
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}
        assert not [p for p in rendered.of_kind("PodDisruptionBudget") if p["metadata"]["name"] == name]
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["command"][0].endswith(f"/{command}")
        assert "livenessProbe" in container


def test_migration_job_runs_before_the_servers_serve(rendered: Rendered) -> None:
    job = rendered.of_kind("Job")
    assert len(job) == 1
    assert job[0]["metadata"]["name"] == f"jobmon-migrate-{TAG}"
    container = job[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][-2:] == ["db", "upgrade"]
    assert job[0]["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 10033
    wait = rendered.named("Deployment", SERVER)["spec"]["template"]["spec"]["initContainers"][0]
    assert "db current --check" in " ".join(wait["command"])


def test_in_cluster_database_accounts_match_the_roles(in_cluster: Rendered) -> None:
    init = secret_data(in_cluster.named("Secret", "jobmon-mariadb-init"))["init.sql"]
    assert "GRANT SELECT ON `jobmon`.* TO 'jobmon_ro'@'%'" in init
    assert "GRANT SELECT, INSERT, UPDATE, DELETE ON `jobmon`.* TO 'jobmon_state'@'%'" in init
    assert "GRANT ALL PRIVILEGES ON `jobmon`.* TO 'jobmon_migrator'@'%'" in init
    assert "UPDATE (maxpss, maxrss, wallclock) ON `jobmon`.task_instance TO 'jobmon_qpid'@'%'" in init
    assert rendered_sql_escapes(in_cluster.secrets["jobmon_db_migrator_password"]) in init
    assert "EVENT mysql.jobmon_qpid_grant" in init
    # mariadbd's init-file takes one statement per line.
    assert all(line.endswith(";") for line in init.splitlines() if line.strip())
    sts = in_cluster.named("StatefulSet", DB)
    image = sts["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"{REGISTRY}jobmon-mariadb:{MARIADB_TAG}"


def rendered_sql_escapes(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def test_ingress_serves_tls(rendered: Rendered) -> None:
    ingress = rendered.named("Ingress", SERVER)
    assert ingress["spec"]["tls"] == [{"hosts": ["jobmon.example.org"], "secretName": "jobmon-tls"}]
    tls = rendered.named("Secret", "jobmon-tls")
    assert tls["type"] == "kubernetes.io/tls"
    assert set(tls["data"]) == {"tls.crt", "tls.key"}


def test_init_file_makes_the_roles_accounts(in_cluster: Rendered) -> None:
    """The init SQL on a real mariadbd, as the StatefulSet runs it; then the migrator migrates, the event
    grants the qpid account its columns, and the read-only account cannot write."""
    try:
        find_binaries()
    except MariaDBUnavailable as error:
        if in_ci():
            raise
        pytest.skip(str(error))
    from jobmon.server import migrate

    init = secret_data(in_cluster.named("Secret", "jobmon-mariadb-init"))["init.sql"]
    pw = in_cluster.secrets
    with init_file_server(init) as server:
        migrate.upgrade(server.url("jobmon_migrator", pw["jobmon_db_migrator_password"], "jobmon"))
        deadline = 30
        grants = ""
        while deadline > 0 and "UPDATE (" not in grants:
            with server.connect() as conn, conn.cursor() as cur:
                cur.execute("SHOW GRANTS FOR 'jobmon_qpid'@'%'")
                grants = " ".join(row[0] for row in cur.fetchall())
            deadline -= 1
            time.sleep(0.5)
        assert "GRANT SELECT, UPDATE (" in grants
        assert "ON `jobmon`.`task_instance` TO `jobmon_qpid`@`%`" in grants
        with server.connect("jobmon_state", pw["jobmon_db_state_password"], "jobmon") as conn, \
                conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM workflow")
        with server.connect("jobmon_ro", pw["jobmon_db_readonly_password"], "jobmon") as conn, \
                conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM workflow")
            with pytest.raises(pymysql.err.OperationalError, match="command denied"):
                cur.execute("DELETE FROM workflow")
