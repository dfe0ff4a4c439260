"""The deployment files stay in step with the code: every DOCENT_* variable they set is a real
setting, every ``docent`` command they run parses, the Kubernetes vLLM flags are serve.sh's,
and the ingestion CronJobs cover every partition once. (No container runtime or cluster runs
here; the manifests were validated against the Kubernetes 1.32 schemas when written.)"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import yaml

from retrieval.settings import Settings
from ui.cli.main import build_parser

from .conftest import REPO

DEPLOY = REPO / "deploy"
NOT_SETTINGS = re.compile(r"^DOCENT_(VLLM_|INGEST_|DOCUMENTS$)")


def yaml_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def k8s_objects() -> list[dict]:
    return [d for f in sorted((DEPLOY / "k8s").glob("*.yaml")) if f.name != "kustomization.yaml"
            and f.name != "qdrant-values.yaml" for d in yaml_docs(f)]


def containers(obj: dict) -> list[dict]:
    spec = obj.get("spec", {})
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec.get("template", {}).get("spec", {}).get("containers", [])


def docent_commands() -> list[list[str]]:
    cmds = []
    for name, svc in compose()["services"].items():
        for cmd in (svc.get("command"), (svc.get("healthcheck") or {}).get("test")):
            if isinstance(cmd, list):
                cmd = cmd[1:] if cmd[0] == "CMD" else cmd
                if cmd and cmd[0] == "docent":
                    cmds.append(cmd)
    for obj in k8s_objects():
        for c in containers(obj):
            probe = (c.get("livenessProbe") or {}).get("exec", {}).get("command")
            for cmd in (c.get("command"), probe):
                if cmd and cmd[0] == "docent":
                    cmds.append(cmd)
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        m = re.search(r'(?:CMD|HEALTHCHECK.*CMD) (\[.*\])', line)
        if m and '"docent"' in m.group(1):
            cmds.append(yaml.safe_load(m.group(1)))
    return cmds


def test_every_docent_variable_in_the_deploy_files_is_a_setting():
    fields = set(Settings.model_fields)
    seen = set()
    c = compose()
    envs = [c["x-docent-env"]] + [svc.get("environment") or {} for svc in c["services"].values()]
    envs += [o["data"] for o in k8s_objects() if o["kind"] == "ConfigMap"]
    envs += [{e["name"]: "" for e in ctr.get("env", [])} for o in k8s_objects() for ctr in containers(o)]
    for env in envs:
        for key in env:
            if key.startswith("DOCENT_") and not NOT_SETTINGS.match(key):
                seen.add(key)
                assert key[len("DOCENT_"):].lower() in fields, f"{key} is not a Docent setting"
    assert {"DOCENT_QDRANT_SHARDS", "DOCENT_QDRANT_REPLICATION_FACTOR", "DOCENT_METRICS_PORT"} <= seen


def test_every_docent_command_in_the_deploy_files_parses():
    cmds = docent_commands()
    assert len(cmds) >= 8
    parser = build_parser()
    for cmd in cmds:
        parser.parse_args(cmd[1:])  # argparse exits (fails the test) on a bad command line
    assert any(cmd[1] == "doctor" for cmd in cmds)


def test_ingestion_cronjobs_cover_each_partition_once():
    parts = []
    for obj in k8s_objects():
        if obj["kind"] == "CronJob":
            [ctr] = containers(obj)
            args = build_parser().parse_args(ctr["command"][1:])
            parts.append(args.partition)
    assert parts and {p.count for p in parts} == {len(parts)}
    assert sorted(p.index for p in parts) == list(range(len(parts)))


def test_kubernetes_vllm_flags_are_serve_sh_flags():
    env = {**os.environ, "DOCENT_VLLM_HOST": "0.0.0.0", "DOCENT_LLM_API_KEY": "EMPTY"}
    printed = subprocess.run(["bash", str(DEPLOY / "vllm" / "serve.sh"), "--print"], env=env,
                             capture_output=True, text=True, check=True).stdout
    serve = shlex.split(printed)
    [deployment] = [o for o in k8s_objects() if o["kind"] == "Deployment" and o["metadata"]["name"] == "vllm"]
    [ctr] = containers(deployment)
    assert ctr["command"] + ctr["args"] == serve


def test_prometheus_scrapes_the_compose_services():
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    services = compose()["services"]
    for target in targets:
        host, port = target.split(":")
        assert host in services, target
    assert "vllm:8000" in targets and f"docent-ui:{services['docent-ui']['environment']['DOCENT_METRICS_PORT']}" in targets


def test_compose_runs_qdrant_with_a_required_api_key_that_docent_sends():
    c = compose()
    required = "${QDRANT_API_KEY:?set QDRANT_API_KEY}"
    assert c["services"]["qdrant"]["environment"]["QDRANT__SERVICE__API_KEY"] == required
    assert c["x-docent-env"]["DOCENT_QDRANT_API_KEY"] == required


def test_metrics_listen_beyond_loopback_only_where_prometheus_scrapes_them():
    """The metrics default to 127.0.0.1; a deployment that scrapes across containers says so."""
    c = compose()
    envs = [svc.get("environment") or {} for svc in c["services"].values()]
    envs += [o["data"] for o in k8s_objects() if o["kind"] == "ConfigMap"]
    for env in envs:
        if "DOCENT_METRICS_PORT" in env:
            assert env.get("DOCENT_METRICS_HOST") == "0.0.0.0"
    ui_ports = c["services"]["docent-ui"]["ports"]
    assert all(not p.endswith(":9108") or p.startswith("127.0.0.1:") for p in ui_ports)
