"""Static checks of target-stack/deploy: Terraform (python-hcl2 + checkov) and Kubernetes
manifests (kubernetes-validate --strict), plus the two Dockerfiles.

Run:  pip install -r tests/deploy/requirements.txt && python -m pytest tests/deploy -q

checkov runs from its own virtualenv (its dependency bc-python-hcl2 owns the same `hcl2`
package as python-hcl2). The venv is created on first use under
$PEAKLOAD_TEST_CACHE (default ~/.cache/peakload) from requirements-checkov.txt; set
PEAKLOAD_CHECKOV=/path/to/checkov to use an existing checkov instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import hcl2
import kubernetes_validate
import pytest
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEPLOY = REPO / "target-stack" / "deploy"
TF_DIR = DEPLOY / "terraform"
K8S_DIR = DEPLOY / "k8s"

# A Kubernetes version the pinned kubernetes-validate ships schemas for.
K8S_VERSION = "1.33.0"

# Every checkov skip must be one of these, on this resource (and carry a reason).
ALLOWED_SKIPS = {
    ("CKV_AWS_109", "aws_iam_policy_document.kms"),
    ("CKV_AWS_111", "aws_iam_policy_document.kms"),
    ("CKV_AWS_356", "aws_iam_policy_document.kms"),
    ("CKV2_AWS_57", "aws_secretsmanager_secret.admin_token[0]"),
    ("CKV2_AWS_28", "aws_lb.this"),
}


# --------------------------------------------------------------------------- Terraform model


def _clean(node):
    """Strip the quoting python-hcl2 may leave on keys and the block markers."""
    if isinstance(node, dict):
        return {
            k.strip('"'): _clean(v)
            for k, v in node.items()
            if k not in ("__is_block__", "__comments__", "__inline_comments__")
        }
    if isinstance(node, list):
        return [_clean(v) for v in node]
    return node


def _parse(path: Path) -> dict:
    opts = hcl2.SerializationOptions(
        strip_string_quotes=True, explicit_blocks=False, with_comments=False
    )
    return _clean(hcl2.loads(path.read_text(), serialization_options=opts))


class Tf:
    def __init__(self, directory: Path):
        self.files = sorted(directory.glob("*.tf"))
        self.resources: dict[tuple[str, str], dict] = {}
        self.data: dict[tuple[str, str], dict] = {}
        self.variables: dict[str, dict] = {}
        self.outputs: dict[str, dict] = {}
        self.locals: dict = {}
        self.terraform: list[dict] = []
        for f in self.files:
            doc = _parse(f)
            for kind, target in (("resource", self.resources), ("data", self.data)):
                for entry in doc.get(kind, []):
                    for rtype, named in entry.items():
                        for rname, body in named.items():
                            assert (rtype, rname) not in target, f"duplicate {rtype}.{rname}"
                            target[(rtype, rname)] = body
            for entry in doc.get("variable", []):
                self.variables.update(entry)
            for entry in doc.get("output", []):
                self.outputs.update(entry)
            for entry in doc.get("locals", []):
                self.locals.update(entry)
            self.terraform.extend(doc.get("terraform", []))

    def of_type(self, rtype: str) -> dict[str, dict]:
        return {n: b for (t, n), b in self.resources.items() if t == rtype}

    def default(self, expr):
        """Resolve a bare `${var.x}` to the variable's default."""
        m = re.fullmatch(r"\$\{var\.(\w+)\}", str(expr))
        if not m:
            return expr
        return self.variables[m.group(1)].get("default")


@pytest.fixture(scope="module")
def tf() -> Tf:
    return Tf(TF_DIR)


def _one(block):
    """A nested block parses to a list of one dict."""
    if isinstance(block, list):
        assert len(block) == 1, block
        return block[0]
    return block


# --------------------------------------------------------------------------- Terraform tests


def test_every_tf_file_parses_and_layout(tf):
    names = {f.name for f in tf.files}
    assert {"versions.tf", "variables.tf", "outputs.tf"} <= names
    assert len(tf.resources) > 40


def test_providers_are_pinned(tf):
    providers = {}
    for block in tf.terraform:
        assert block.get("required_version"), "terraform required_version missing"
        for rp in block.get("required_providers", []):
            providers.update(rp)
    assert providers["aws"]["source"] == "hashicorp/aws"
    assert providers["aws"]["version"].startswith("~>"), "pin the AWS provider with ~>"


def test_vpc_is_reused_through_variables(tf):
    for v in ("vpc_id", "private_subnet_ids", "public_subnet_ids", "certificate_arn"):
        assert v in tf.variables
        assert "default" not in tf.variables[v], f"{v} must be given by the user"
    assert not tf.of_type("aws_vpc") and not tf.of_type("aws_subnet")


def test_alb_health_check_https_and_redirect(tf):
    tg = tf.of_type("aws_lb_target_group")["api"]
    hc = _one(tg["health_check"])
    assert hc["path"] == "/readyz"
    assert hc["matcher"] == "200"
    assert tg["target_type"] == "ip" and tg["port"] == "${local.container_port}"
    assert tf.locals["container_port"] == 8080

    listeners = tf.of_type("aws_lb_listener")
    https = [l for l in listeners.values() if l["protocol"] == "HTTPS"]
    assert len(https) == 1
    assert https[0]["certificate_arn"] == "${var.certificate_arn}"
    assert "TLS" in tf.default(https[0]["ssl_policy"])
    http = [l for l in listeners.values() if l["protocol"] == "HTTP"]
    assert len(http) == 1
    action = _one(http[0]["default_action"])
    assert action["type"] == "redirect"
    redirect = _one(action["redirect"])
    assert redirect["protocol"] == "HTTPS" and redirect["status_code"] == "HTTP_301"

    lb = tf.of_type("aws_lb")["this"]
    assert lb["drop_invalid_header_fields"] is True
    assert lb["internal"] is False


def test_sqs_dlq_redrive_and_encryption(tf):
    queues = tf.of_type("aws_sqs_queue")
    assert {"notifications", "multivac", "dlq"} <= set(queues)
    for name, q in queues.items():
        assert q.get("kms_master_key_id") or q.get("sqs_managed_sse_enabled") is True, name
    for name in ("notifications", "multivac"):
        policy = queues[name]["redrive_policy"]
        assert "deadLetterTargetArn = aws_sqs_queue.dlq.arn" in policy
        assert "maxReceiveCount = var.sqs_max_receive_count" in policy
    assert tf.variables["sqs_max_receive_count"]["default"] >= 1
    assert "redrive_policy" not in queues["dlq"]
    allow = tf.of_type("aws_sqs_queue_redrive_allow_policy")["dlq"]
    assert "byQueue" in allow["redrive_allow_policy"]


def test_dynamodb_tables(tf):
    tables = tf.of_type("aws_dynamodb_table")
    assert set(tables) == {"carts", "sessions", "timestamps", "notifications"}
    for name, t in tables.items():
        assert t["billing_mode"] == "PAY_PER_REQUEST", name
        assert _one(t["point_in_time_recovery"])["enabled"] is True, name
        sse = _one(t["server_side_encryption"])
        assert sse["enabled"] is True and sse["kms_key_arn"], name
    # The keys and TTL attribute the stack's DynamoDB backend uses (target-stack/aws).
    for name in ("sessions", "notifications"):
        ttl = _one(tables[name]["ttl"])
        assert ttl["attribute_name"] == "expires_at" and ttl["enabled"] is True, name
    for name, t in tables.items():
        assert t["hash_key"] == "pk", name
        assert t.get("range_key") == (None if name == "sessions" else "sk"), name


def test_rds_private_encrypted_managed_password(tf):
    db = tf.of_type("aws_db_instance")["mysql"]
    assert db["engine"] == "mysql"
    assert db["publicly_accessible"] is False
    assert db["storage_encrypted"] is True and db["kms_key_id"]
    assert db["manage_master_user_password"] is True
    assert "password" not in db
    assert db["multi_az"] == "${var.db_multi_az}"
    assert db["deletion_protection"] == "${var.db_deletion_protection}"
    assert tf.variables["db_multi_az"]["default"] is True
    assert tf.variables["db_deletion_protection"]["default"] is True
    params = {p["name"]: p["value"] for p in tf.of_type("aws_db_parameter_group")["mysql"]["parameter"]}
    assert params["require_secure_transport"] == "1"


def _sg_rules(tf, kind):
    return tf.of_type(f"aws_vpc_security_group_{kind}_rule")


def test_security_groups_are_tight(tf):
    ingress = _sg_rules(tf, "ingress")
    egress = _sg_rules(tf, "egress")
    for name, r in list(ingress.items()) + list(egress.items()):
        assert r.get("description"), name
        assert r["ip_protocol"] != "-1", f"{name}: all-protocol rule"
    into_tasks = [r for r in ingress.values() if r["security_group_id"] == "${aws_security_group.tasks.id}"]
    assert into_tasks
    for r in into_tasks:
        assert r["from_port"] == r["to_port"] == "${local.container_port}"
        assert r["referenced_security_group_id"] in (
            "${aws_security_group.alb.id}",
            "${aws_security_group.tasks.id}",
        )
        assert "cidr_ipv4" not in r
    into_db = [r for r in ingress.values() if r["security_group_id"] == "${aws_security_group.db.id}"]
    assert len(into_db) == 1
    assert into_db[0]["from_port"] == into_db[0]["to_port"] == 3306
    assert into_db[0]["referenced_security_group_id"] == "${aws_security_group.tasks.id}"
    alb_out = [r for r in egress.values() if r["security_group_id"] == "${aws_security_group.alb.id}"]
    assert len(alb_out) == 1 and alb_out[0]["referenced_security_group_id"] == "${aws_security_group.tasks.id}"
    # Inline rules would fight the rule resources.
    for name, sg in tf.of_type("aws_security_group").items():
        assert "ingress" not in sg and "egress" not in sg, name


def test_ecs_fargate_services_with_service_connect(tf):
    cluster = tf.of_type("aws_ecs_cluster")["this"]
    settings = {s["name"]: s["value"] for s in cluster["setting"]}
    assert settings["containerInsights"] in ("enabled", "enhanced")
    assert tf.of_type("aws_service_discovery_http_namespace")
    services = tf.of_type("aws_ecs_service")
    assert set(services) == {"api", "worker"}
    for name, svc in services.items():
        assert svc["launch_type"] == "FARGATE", name
        net = _one(svc["network_configuration"])
        assert net["assign_public_ip"] is False
        assert net["subnets"] == "${var.private_subnet_ids}"
        sc = _one(svc["service_connect_configuration"])
        assert sc["enabled"] is True
        assert "aws_service_discovery_http_namespace" in sc["namespace"]
        assert _one(svc["deployment_circuit_breaker"])["rollback"] is True
    lb = _one(services["api"]["load_balancer"])
    assert lb["container_port"] == "${local.container_port}"

    taskdef = tf.of_type("aws_ecs_task_definition")["stack"]
    assert taskdef["requires_compatibilities"] == ["FARGATE"]
    assert taskdef["network_mode"] == "awsvpc"
    assert taskdef["execution_role_arn"] != taskdef["task_role_arn"]
    containers = taskdef["container_definitions"]
    for needle in (
        "readonlyRootFilesystem = true",
        "privileged = false",
        'user = "10001:10001"',
        'drop = ["ALL"]',
        'logDriver = "awslogs"',
        "healthCheck",
        'command = [each.key, "--listen"',
    ):
        assert needle in containers, needle


def test_no_app_mesh(tf):
    for rtype, _ in list(tf.resources) + list(tf.data):
        assert not rtype.startswith("aws_appmesh_"), rtype
    for f in tf.files:
        assert "appmesh" not in f.read_text().lower().replace("app mesh", ""), f.name


def test_cpu_target_tracking_70_for_both_services(tf):
    targets = tf.of_type("aws_appautoscaling_target")
    assert set(targets) == {"api", "worker"}
    for name, t in targets.items():
        assert t["service_namespace"] == "ecs"
        assert t["scalable_dimension"] == "ecs:service:DesiredCount"
        assert f"aws_ecs_service.{name}.name" in t["resource_id"]

    cpu_policies = {}
    for pname, p in tf.of_type("aws_appautoscaling_policy").items():
        assert p["policy_type"] == "TargetTrackingScaling", pname
        conf = _one(p["target_tracking_scaling_policy_configuration"])
        if "predefined_metric_specification" in conf:
            spec = _one(conf["predefined_metric_specification"])
            if spec["predefined_metric_type"] == "ECSServiceAverageCPUUtilization":
                target = re.search(r"aws_appautoscaling_target\.(\w+)\.", p["resource_id"]).group(1)
                cpu_policies[target] = tf.default(conf["target_value"])
    assert cpu_policies == {"api": 70, "worker": 70}

    backlog = tf.of_type("aws_appautoscaling_policy")["worker_backlog"]
    conf = _one(backlog["target_tracking_scaling_policy_configuration"])
    metrics = _one(conf["customized_metric_specification"])["metrics"]
    returned = [m for m in metrics if m.get("return_data") is True]
    assert len(returned) == 1 and "tasks" in returned[0]["expression"]


def _policy_statements(tf):
    for (rtype, name), body in tf.data.items():
        if rtype == "aws_iam_policy_document":
            for st in body.get("statement", []):
                yield name, st


def _resolve_local(tf, value):
    """`${local.x}` -> the local's value (one level), anything else unchanged."""
    m = re.fullmatch(r"\$\{local\.(\w+)\}", value) if isinstance(value, str) else None
    return tf.locals[m.group(1)] if m else value


def test_iam_least_privilege(tf):
    seen_sqs = seen_ddb = False
    for name, st in _policy_statements(tf):
        actions = _resolve_local(tf, st.get("actions", []))
        resources = _resolve_local(tf, st.get("resources", []))
        assert isinstance(actions, list), (name, actions)
        for a in actions:
            service = a.split(":")[0]
            if service in ("sqs", "dynamodb", "secretsmanager"):
                assert not a.endswith(":*"), f"{name}: wildcard action {a}"
                assert resources != "*" and not (isinstance(resources, list) and "*" in resources), f"{name}: {a} on *"
                for r in resources if isinstance(resources, list) else [resources]:
                    # Only references to the stack's own queues/tables/secrets, never literals
                    # (a `[*]` splat over a counted resource is a reference, not a wildcard;
                    # `<table arn>/index/*` is the table's own indexes).
                    bare = r.replace("[*]", "").replace("/index/*", "")
                    assert r.startswith("${") and "*" not in bare, f"{name}: {a} on {r}"
                seen_sqs |= service == "sqs"
                seen_ddb |= service == "dynamodb"
        if name != "kms":
            assert "iam:*" not in actions and "*" not in actions, name
    assert seen_sqs and seen_ddb
    for local in ("work_queue_arns", "table_arns"):
        for r in tf.locals[local]:
            assert r.startswith("${aws_") and "*" not in r, (local, r)

    # Each service's task role only gets its own policy, and the roles are distinct.
    roles = tf.of_type("aws_iam_role")
    assert {"execution", "api_task", "worker_task"} <= set(roles)
    api = tf.data[("aws_iam_policy_document", "api_task")]
    worker = tf.data[("aws_iam_policy_document", "worker_task")]
    api_actions = {a for st in api["statement"] for a in _resolve_local(tf, st["actions"])}
    worker_actions = {a for st in worker["statement"] for a in _resolve_local(tf, st["actions"])}
    assert "sqs:ReceiveMessage" not in api_actions and "sqs:DeleteMessage" not in api_actions
    assert "sqs:ReceiveMessage" in worker_actions
    # The execution role reads exactly the DB secret and the admin token.
    execution = tf.data[("aws_iam_policy_document", "execution")]
    secrets = [st for st in execution["statement"] if st["actions"] == ["secretsmanager:GetSecretValue"]]
    assert len(secrets) == 1 and "master_user_secret" in str(secrets[0]["resources"])
    assert not tf.of_type("aws_iam_policy_attachment")  # exclusive attachments clobber other roles


def test_logs_dashboard_and_alarms(tf):
    groups = tf.of_type("aws_cloudwatch_log_group")
    assert {"api", "worker"} <= set(groups)
    for name, g in groups.items():
        assert g["retention_in_days"] == "${var.log_retention_days}", name
        assert g.get("kms_key_id"), name
    body = tf.of_type("aws_cloudwatch_dashboard")["this"]["dashboard_body"]
    for needle in (
        "TargetResponseTime",
        "HTTPCode_Target_5XX_Count",
        "ApproximateNumberOfMessagesVisible",
        "ApproximateAgeOfOldestMessage",
        "CPUUtilization",
    ):
        assert needle in body, needle
    alarms = tf.of_type("aws_cloudwatch_metric_alarm")
    assert alarms["queue_depth"]["metric_name"] == "ApproximateNumberOfMessagesVisible"
    assert alarms["p99_latency"]["extended_statistic"] == "p99"
    assert alarms["p99_latency"]["metric_name"] == "TargetResponseTime"
    rate = alarms["error_rate_5xx"]["metric_query"]
    assert any("5XX" in str(q.get("metric")) for q in rate)
    assert any(q.get("return_data") is True and "requests" in q.get("expression", "") for q in rate)
    for name, a in alarms.items():
        assert a.get("alarm_actions"), f"{name} notifies nobody"


def test_outputs_for_peakload_diagnosis(tf):
    required = {
        "alb_dns_name",
        "target_url",
        "alb_arn_suffix",
        "target_group_arn_suffix",
        "notifications_queue_url",
        "multivac_queue_url",
        "dlq_url",
        "dynamodb_table_names",
        "log_group_names",
        "ecs_cluster_name",
        "api_service_name",
        "worker_service_name",
        "api_autoscaling_resource_id",
        "worker_autoscaling_resource_id",
        "rds_instance_identifier",
        "peakload_observe",
    }
    assert required <= set(tf.outputs)
    for name, out in tf.outputs.items():
        assert out.get("description"), name
    observe = tf.outputs["peakload_observe"]["value"]["cloudwatch"]
    assert {"AWS/ECS", "AWS/ApplicationELB", "AWS/SQS", "AWS/RDS", "AWS/DynamoDB"} <= set(observe)


def test_every_checkov_skip_has_a_reason():
    pattern = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")
    skips = []
    for f in TF_DIR.glob("*.tf"):
        for m in pattern.finditer(f.read_text()):
            assert m.group(2) and len(m.group(2).strip()) > 20, f"{f.name}: {m.group(1)} has no reason"
            skips.append(m.group(1))
    assert len(skips) <= len(ALLOWED_SKIPS)


# --------------------------------------------------------------------------- checkov


def _checkov_binary() -> str:
    override = os.environ.get("PEAKLOAD_CHECKOV")
    if override:
        return override
    req = HERE / "requirements-checkov.txt"
    key = hashlib.sha256(req.read_bytes() + sys.version.encode()).hexdigest()[:12]
    cache = Path(os.environ.get("PEAKLOAD_TEST_CACHE", Path.home() / ".cache" / "peakload"))
    env_dir = cache / f"checkov-venv-{key}"
    binary = env_dir / "bin" / "checkov"
    if not binary.exists():
        env_dir.parent.mkdir(parents=True, exist_ok=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
        subprocess.run(
            [str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q",
             "--disable-pip-version-check", "-r", str(req)],
            check=True,
            timeout=600,
        )
    return str(binary)


def _run_checkov(quiet: bool, directory: Path = TF_DIR) -> dict:
    cmd = [_checkov_binary(), "-d", str(directory), "--compact", "-o", "json", "--skip-download"]
    if quiet:
        cmd.insert(3, "--quiet")
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert proc.stdout.strip(), f"checkov printed nothing (rc={proc.returncode}): {proc.stderr[-2000:]}"
    report = json.loads(proc.stdout)
    if isinstance(report, list):  # several frameworks
        (report,) = [r for r in report if r.get("check_type") == "terraform"]
    return report


@pytest.fixture(scope="module")
def checkov_report() -> dict:
    return _run_checkov(quiet=False)


def test_checkov_quiet_compact_json_has_no_failed_checks():
    # The exact command of the brief: checkov -d ... --quiet --compact -o json
    report = _run_checkov(quiet=True)
    failed = report["results"].get("failed_checks", [])
    assert report["summary"]["failed"] == 0, [(f["check_id"], f["resource"]) for f in failed]
    assert report["summary"]["parsing_errors"] == 0


def test_checkov_passes_with_only_the_allowed_skips(checkov_report):
    summary = checkov_report["summary"]
    assert summary["failed"] == 0
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 150
    skipped = {(s["check_id"], s["resource"]) for s in checkov_report["results"]["skipped_checks"]}
    assert skipped <= ALLOWED_SKIPS, skipped - ALLOWED_SKIPS
    for s in checkov_report["results"]["skipped_checks"]:
        assert s["check_result"].get("suppress_comment"), s["check_id"]


# --------------------------------------------------------------------------- Kubernetes


def _manifests() -> list[tuple[str, dict]]:
    docs = []
    for f in sorted(K8S_DIR.glob("*.yaml")):
        if f.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(f.read_text()):
            if doc:
                docs.append((f.name, doc))
    return docs


@pytest.fixture(scope="module")
def manifests():
    docs = _manifests()
    assert docs
    return docs


def _by_kind(manifests, kind):
    return {d["metadata"]["name"]: d for _, d in manifests if d["kind"] == kind}


def test_manifests_validate_strict(manifests):
    for fname, doc in manifests:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_strict_validation_is_really_strict(manifests):
    deployment = next(d for _, d in manifests if d["kind"] == "Deployment")
    bad = json.loads(json.dumps(deployment))
    bad["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def test_manifests_validate_with_cli():
    files = [str(f) for f in sorted(K8S_DIR.glob("*.yaml")) if f.name != "kustomization.yaml"]
    cli = Path(sys.executable).parent / "kubernetes-validate"
    cmd = [str(cli)] if cli.exists() else [sys.executable, "-m", "kubernetes_validate"]
    proc = subprocess.run(
        cmd + ["-k", K8S_VERSION, "--strict", "--quiet", *files],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_deployments_probes_resources_security(manifests):
    deployments = _by_kind(manifests, "Deployment")
    assert set(deployments) == {"api", "worker"}
    for name, d in deployments.items():
        pod = d["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        (c,) = pod["containers"]
        assert c["args"][0] == name
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["ports"][0]["containerPort"] == 8080
        for section in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][section]), (name, section)
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        for env_from in c.get("envFrom", []):
            if "secretRef" in env_from:
                assert env_from["secretRef"]["name"] == "peakload-stack"
        assert d["spec"]["selector"]["matchLabels"].items() <= d["spec"]["template"]["metadata"]["labels"].items()


def test_services_hpa_pdb(manifests):
    deployments = _by_kind(manifests, "Deployment")
    services = _by_kind(manifests, "Service")
    assert {"api", "worker"} <= set(services)
    for name, svc in services.items():
        assert svc["spec"]["selector"].items() <= deployments[name]["spec"]["template"]["metadata"]["labels"].items()

    hpas = _by_kind(manifests, "HorizontalPodAutoscaler")
    assert set(hpas) == {"api", "worker"}
    for name, h in hpas.items():
        assert h["apiVersion"] == "autoscaling/v2"
        assert h["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        (metric,) = h["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"
        assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
        assert h["spec"]["minReplicas"] >= 1

    pdbs = _by_kind(manifests, "PodDisruptionBudget")
    assert set(pdbs) == {"api", "worker"}
    for name, p in pdbs.items():
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert p["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_secret_is_only_a_template(manifests):
    secrets = _by_kind(manifests, "Secret")
    assert set(secrets) == {"peakload-stack"}
    (secret,) = secrets.values()
    assert "data" not in secret
    for key, value in secret["stringData"].items():
        assert "CHANGE_ME" in value, key
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    assert "secret.example.yaml" not in kustomization["resources"]
    for res in kustomization["resources"]:
        assert (K8S_DIR / res).is_file(), res


def test_all_namespaced_objects_share_the_namespace(manifests):
    for fname, doc in manifests:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "peakload-stack", fname


# --------------------------------------------------------------------------- Dockerfiles


@pytest.mark.parametrize(
    "path,entrypoint",
    [("target-stack/Dockerfile", "peakload-stack"), ("Dockerfile", "peakload")],
)
def test_dockerfiles(path, entrypoint):
    text = (REPO / path).read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert len(froms) >= 2 and froms[0].startswith("rust:") and "slim" in froms[-1]
    assert re.search(r"^USER\s+10001", text, re.M), "runtime must not be root"
    assert f'ENTRYPOINT ["{entrypoint}"]' in text
    assert f"--bin {entrypoint}" in text and "--locked" in text
    if entrypoint == "peakload-stack":
        assert re.search(r"^EXPOSE 8080$", text, re.M)
        assert re.search(r"^HEALTHCHECK .*", text, re.M) and "/healthz" in text
        assert 'CMD ["all"' in text
    dockerignore = (REPO / ".dockerignore").read_text()
    assert "target/" in dockerignore and ".git" in dockerignore


def _highest_rust_version() -> tuple[int, ...]:
    """The highest `rust-version` any locked dependency asks for (Linux builds)."""
    proc = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked", "--offline",
         "--filter-platform", "x86_64-unknown-linux-gnu"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    versions = [
        tuple(int(x) for x in p["rust_version"].split("."))
        for p in json.loads(proc.stdout)["packages"]
        if p.get("rust_version")
    ]
    assert versions
    return max(versions)


@pytest.mark.parametrize("path", ["target-stack/Dockerfile", "Dockerfile"])
def test_dockerfile_rust_is_new_enough_for_the_lock_file(path):
    # cargo refuses to build a package whose rust-version is above the compiler's: an image
    # pinned to an older Rust fails at `docker build`, which no test here can run.
    m = re.search(r"^ARG RUST_VERSION=(\d+)\.(\d+)(?:\.(\d+))?$", (REPO / path).read_text(), re.M)
    assert m, "RUST_VERSION must be a plain version"
    pinned = (int(m.group(1)), int(m.group(2)), int(m.group(3) or 99))
    assert pinned >= _highest_rust_version(), (pinned, _highest_rust_version())


# --------------------------------------------------------------------------- distributed runs

LOADGEN_DIR = REPO / "deploy" / "k8s"


def _loadgen_docs() -> list[dict]:
    docs = []
    for f in sorted(LOADGEN_DIR.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(f.read_text()) if d)
    return docs


def test_loadgen_manifests_validate_strict():
    docs = _loadgen_docs()
    assert {d["kind"] for d in docs} == {"PersistentVolumeClaim", "Job"}
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_shards_are_an_indexed_job_that_never_reruns_a_shard():
    jobs = {d["metadata"]["name"]: d for d in _loadgen_docs() if d["kind"] == "Job"}
    spec = jobs["peakload-shards"]["spec"]
    assert spec["completionMode"] == "Indexed"
    # A shard run again would start late: the merge must see it as missing instead.
    assert spec["backoffLimitPerIndex"] == 0
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (c,) = pod["containers"]
    env = {e["name"]: e for e in c["env"]}
    n = spec["completions"]
    assert spec["parallelism"] == n, "every shard must run at once"
    assert env["PEAKLOAD_SHARD_COUNT"]["value"] == str(n), "the shard count is the completions"
    assert "$(PEAKLOAD_START_AT)" in c["args"] and "--start-at" in c["args"]
    out = c["args"][c["args"].index("--out") + 1]
    assert "$(SHARD_INDEX)" in out, "each shard writes its own directory"
    assert c["resources"]["requests"]["cpu"]
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"]
    merge = jobs["peakload-merge"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert merge[0] == "merge" and "--out" in merge


# --------------------------------------------------------------------------- ECS load generators

ECS_DIR = REPO / "deploy" / "ecs"

# Every checkov skip in deploy/ecs must be one of these (and carry a reason).
ECS_ALLOWED_SKIPS = {
    ("CKV_AWS_109", "aws_iam_policy_document.kms"),
    ("CKV_AWS_111", "aws_iam_policy_document.kms"),
    ("CKV_AWS_356", "aws_iam_policy_document.kms"),
    ("CKV2_AWS_5", "aws_security_group.tasks"),
}


@pytest.fixture(scope="module")
def ecs() -> Tf:
    return Tf(ECS_DIR)


def _statements(tf: Tf, name: str) -> list[dict]:
    doc = tf.data[("aws_iam_policy_document", name)]
    plain = doc.get("statement", [])
    dynamic = [d["statement"]["content"] for d in doc.get("dynamic", []) if "statement" in d]
    return [_one(s) for s in plain] + [_one(c) for c in dynamic]


def test_ecs_module_layout_and_pins(ecs):
    assert {f.name for f in ecs.files} == {"iam.tf", "main.tf", "outputs.tf", "variables.tf", "versions.tf"}
    (aws,) = [p["aws"] for t in ecs.terraform for p in t.get("required_providers", [])]
    assert aws["version"].startswith("~>")
    # A module: the caller configures the provider.
    assert not (ECS_DIR / "providers.tf").exists()
    for name in ("cluster_arn", "task_definition_arn", "security_group_id", "task_role_name", "results_url"):
        assert name in ecs.outputs, name


def test_ecs_task_definition_runs_one_shard_per_task(ecs):
    td = ecs.of_type("aws_ecs_task_definition")["shard"]
    assert td["requires_compatibilities"] == ["FARGATE"]
    assert td["network_mode"] == "awsvpc"
    assert td["execution_role_arn"] != td["task_role_arn"]
    text = (ECS_DIR / "main.tf").read_text()
    containers = text[text.index("container_definitions"):]
    for needle in ("readonlyRootFilesystem = true", 'user                   = "10001:10001"',
                   'containerPath = "/tmp"', 'logDriver = "awslogs"', "stopTimeout = 120"):
        assert needle in containers, needle
    # The shard, start time and prefix come from run-task overrides: nothing run-specific here.
    assert "--shard" not in containers and "s3://" not in containers
    assert ecs.default("${var.cpu}") == 4096


def test_ecs_task_role_reaches_only_the_results_prefix(ecs):
    task = _statements(ecs, "task")
    actions = {a for s in task for a in s["actions"]}
    assert actions == {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "kms:Decrypt", "kms:GenerateDataKey"}
    for s in task:
        for r in s["resources"]:
            assert r != "*", s
            if any(a.startswith("s3:") and a != "s3:ListBucket" for a in s["actions"]):
                assert r.endswith("/${var.results_prefix}*"), r
        if s["actions"] == ["s3:ListBucket"]:
            cond = _one(s["condition"])
            assert cond["variable"] == "s3:prefix"
            assert cond["values"] == ["${var.results_prefix}", "${var.results_prefix}*"]
    execution = _statements(ecs, "execution")
    for s in execution:
        if s["resources"] == ["*"]:
            assert s["actions"] == ["ecr:GetAuthorizationToken"], s


def test_ecs_logs_encrypted_and_kept(ecs):
    lg = ecs.of_type("aws_cloudwatch_log_group")["tasks"]
    assert ecs.default(lg["retention_in_days"]) >= 365
    assert lg["kms_key_id"]
    cluster = ecs.of_type("aws_ecs_cluster")["this"]
    assert _one(cluster["setting"]) == {"name": "containerInsights", "value": "enabled"}


def test_ecs_every_checkov_skip_has_a_reason():
    pattern = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")
    skips = []
    for f in ECS_DIR.glob("*.tf"):
        for m in pattern.finditer(f.read_text()):
            assert m.group(2) and len(m.group(2).strip()) > 20, f"{f.name}: {m.group(1)} has no reason"
            skips.append(m.group(1))
    assert len(skips) <= len(ECS_ALLOWED_SKIPS)


def test_ecs_checkov_passes_with_only_the_allowed_skips():
    report = _run_checkov(quiet=False, directory=ECS_DIR)
    summary = report["summary"]
    failed = report["results"].get("failed_checks", [])
    assert summary["failed"] == 0, [(f["check_id"], f["resource"]) for f in failed]
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 20
    skipped = {(s["check_id"], s["resource"]) for s in report["results"]["skipped_checks"]}
    assert skipped <= ECS_ALLOWED_SKIPS, skipped - ECS_ALLOWED_SKIPS


def test_ecs_run_task_recipe_uses_the_module_outputs():
    doc = (REPO / "docs" / "scale.md").read_text()
    recipe = doc[doc.index("CLUSTER=$(terraform output"):]
    recipe = recipe[: recipe.index("```")]
    for needle in ("--task-definition", "--cluster", "awsvpcConfiguration", '"--shard","\'"$i"\'/\'"$N"\'"',
                   "--start-at", '"--out","\'"$RESULTS"\'"'):
        assert needle in recipe, needle
    for output in ("cluster_arn", "task_definition_arn", "security_group_id", "results_url"):
        assert f"terraform output -raw {output}" in doc, output
