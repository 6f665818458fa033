"""Lints and renders charts/drill with Helm's own library (helm-python-sdk), validates every
object against the Kubernetes OpenAPI schema (kubernetes-validate, strict: no unknown
fields), and checks what the chart promises: replicas by store, SQLite refusing 2, no
default credentials, namespaced RBAC granting exactly the Kubernetes backend's
permissions (given as JSON by crates/drill-cli/tests/chart.rs from
drill_faults::kubernetes::RBAC), a watchdog limited to reverts, the security context, the
dashboard. Prints one line per case; exits 1 on the first broken promise."""

import json
import os
import re
import subprocess
import sys
import tempfile

import kubernetes_validate
import yaml
from helm_python import chart as helm

CHART, RBAC_JSON = sys.argv[1], sys.argv[2]
DRILL = sys.argv[3] if len(sys.argv) > 3 else None
KUBE = "1.34.0"
NS = "chaos"
TOKENS = "admin sha256:0000 alice\n"
PG = "postgres://drill@db.chaos:5432/drill"

# [(group, resource, verbs)] of the backend; revert needs all but delete.
RBAC = [(g, r, sorted(v)) for g, r, v in json.loads(RBAC_JSON)]
# What `drill recover` needs: restore a scale (get, patch), see pods come back (list), delete
# a leftover shards Job (get, delete); never create, never delete pods, never watch.
REVERT = [(g, r, sorted(x for x in v if x not in ("create", "watch") and (x != "delete" or r == "jobs")))
          for g, r, v in RBAC]


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def render(values, name="drill"):
    c = helm.Chart.load(CHART)
    c.validate_schema(values)
    out = c.render(values, name=name, namespace=NS, is_install=True)
    objs = []
    for path, text in out.items():
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                objs.append(doc)
    for o in objs:
        if o["apiVersion"].startswith("monitoring.coreos.com/"):
            # A CRD: no OpenAPI schema in Kubernetes itself; its required fields by hand.
            assert o["spec"]["selector"]["matchLabels"] and o["spec"]["endpoints"], o
            continue
        try:
            kubernetes_validate.validate(o, KUBE, strict=True)
        except kubernetes_validate.ValidationError as e:
            fail(f"{o['kind']} {o['metadata']['name']} is not a valid Kubernetes {KUBE} object: {e.message} at {list(e.path)}")
    return objs, out


def refused(values, words):
    try:
        render(values)
    except Exception as e:  # HelmRenderError / HelmValuesError
        if all(w in str(e) for w in words):
            return str(e)
        fail(f"refused, but the message lacks {words}: {e}")
    fail(f"rendered values that must be refused: {values}")


def of(objs, kind):
    return [o for o in objs if o["kind"] == kind]


def rules(role):
    got = []
    for r in role["rules"]:
        for g in r["apiGroups"]:
            for res in r["resources"]:
                got.append((g, res, sorted(r["verbs"])))
                if "*" in r["verbs"] or "*" in res or "*" in g:
                    fail(f"a wildcard in {role['kind']} {role['metadata']['name']}: {r}")
    return sorted(got)


def daemon(objs):
    (d,) = of(objs, "Deployment")
    return d, d["spec"]["template"]["spec"]["containers"][0]


def case(name):
    print(f"ok: {name}")


# Lint, strict (warnings are errors), for both stores.
for values in ({"auth": {"tokens": TOKENS}}, {"auth": {"tokens": TOKENS}, "database": {"url": PG}}):
    r = helm.lint(CHART, values, strict=True, namespace=NS, kube_version="v" + KUBE)
    bad = [m for m in r["messages"] if m["severity"] >= 2] + r["errors"]
    if bad:
        fail(f"helm lint --strict: {bad}")
case("helm lint --strict, SQLite and PostgreSQL")

# SQLite (the default): one daemon on a PVC, one writer at a time, no watchdog CronJob.
objs, out = render({"auth": {"tokens": TOKENS}})
d, c = daemon(objs)
if d["spec"]["replicas"] != 1 or d["spec"].get("strategy", {}).get("type") != "Recreate":
    fail(f"SQLite: {d['spec']['replicas']} replicas, strategy {d['spec'].get('strategy')}")
if not of(objs, "PersistentVolumeClaim") or of(objs, "CronJob"):
    fail("SQLite: a PVC and no watchdog CronJob expected")
if "--db=/var/lib/drill/history.db" not in c["args"]:
    fail(f"SQLite: the daemon's --db: {c['args']}")
sc, psc = c["securityContext"], d["spec"]["template"]["spec"]["securityContext"]
if not (psc["runAsNonRoot"] and sc["readOnlyRootFilesystem"] and sc["capabilities"]["drop"] == ["ALL"] and sc["allowPrivilegeEscalation"] is False):
    fail(f"security context: {psc} {sc}")
if of(objs, "ClusterRole") or of(objs, "ClusterRoleBinding"):
    fail("rbac.scope: namespace must create no ClusterRole")
(role,) = of(objs, "Role")
if role["metadata"]["namespace"] != NS or rules(role) != sorted(RBAC):
    fail(f"the Role grants {rules(role)}, the backend needs exactly {sorted(RBAC)}")
(binding,) = of(objs, "RoleBinding")
if binding["subjects"][0]["name"] != d["spec"]["template"]["spec"]["serviceAccountName"]:
    fail("the RoleBinding is not for the daemon's ServiceAccount")
(dash,) = [o for o in of(objs, "ConfigMap") if o["metadata"]["name"].endswith("-dashboard")]
if dash["metadata"]["labels"].get("grafana_dashboard") != "1":
    fail(f"dashboard labels: {dash['metadata']['labels']}")
board = json.loads(dash["data"]["drill.json"])
exprs = " ".join(t["expr"] for p in board["panels"] for t in p["targets"])
for m in ("drill_runs_total", "drill_schedule_missed_total", "drill_faults_active",
          "drill_traffic_target_rate", "drill_traffic_achieved_rate", "drill_request_latency_seconds_bucket"):
    if m not in exprs:
        fail(f"the dashboard does not show {m}")
notes = out["drill/templates/NOTES.txt"]
if "drill apply --server" not in notes or "port-forward" not in notes:
    fail(f"NOTES.txt: {notes}")
case("SQLite: 1 daemon, PVC, Recreate, namespaced Role = kubernetes::RBAC, non-root read-only, dashboard, NOTES")

# PostgreSQL: 2 daemons, the URL from the Secret, the watchdog limited to reverts.
objs, _ = render({"auth": {"tokens": TOKENS}, "database": {"url": PG}})
d, c = daemon(objs)
if d["spec"]["replicas"] != 2 or of(objs, "PersistentVolumeClaim"):
    fail(f"PostgreSQL: {d['spec']['replicas']} replicas")
env = {e["name"]: e for e in c["env"]}
if "secretKeyRef" not in env["DATABASE_URL"]["valueFrom"]:
    fail(f"DATABASE_URL: {env}")
(cron,) = of(objs, "CronJob")
if cron["spec"]["concurrencyPolicy"] != "Forbid" or "startingDeadlineSeconds" not in cron["spec"]:
    fail(f"the watchdog CronJob: {cron['spec']}")
job = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
if job["containers"][0]["args"] != ["recover"] or job["serviceAccountName"] == d["spec"]["template"]["spec"]["serviceAccountName"]:
    fail("the watchdog runs `drill recover` with its own ServiceAccount")
(wrole,) = [r for r in of(objs, "Role") if r["metadata"]["name"].endswith("-watchdog")]
if rules(wrole) != sorted(REVERT):
    fail(f"the watchdog's Role grants {rules(wrole)}, reverts need {sorted(REVERT)}")
case("PostgreSQL: 2 daemons, DATABASE_URL from the Secret, watchdog CronJob (Forbid) with a revert-only Role")

refused({"auth": {"tokens": TOKENS}, "replicaCount": 2}, ["SQLite", "replicaCount"])
case("2 daemons on SQLite are refused, saying why")
refused({}, ["no default credentials"])
case("no token file: refused")
refused({"auth": {"tokens": TOKENS}, "rbac": {"scope": "everything"}}, ["scope"])
refused({"auth": {"tokens": TOKENS}, "rbac": {"faults": ["exec-in-pod"]}}, ["faults"])
refused({"auth": {"tokens": TOKENS}, "databse": {"url": PG}}, ["databse"])
case("values.schema.json refuses an unknown scope, fault kind and key")

objs, _ = render({"auth": {"tokens": TOKENS}, "rbac": {"targetNamespaces": ["shop", "payments"]}})
roles = [r for r in of(objs, "Role")]
if sorted(r["metadata"]["namespace"] for r in roles) != ["payments", "shop"] or len(of(objs, "RoleBinding")) != 2:
    fail(f"one Role and RoleBinding per target namespace: {[r['metadata'] for r in roles]}")
case("one Role + RoleBinding per entry of targetNamespaces")

objs, _ = render({"auth": {"tokens": TOKENS}, "rbac": {"scope": "cluster"}})
(cr,) = of(objs, "ClusterRole")
if of(objs, "Role") or rules(cr) != sorted(RBAC):
    fail(f"rbac.scope: cluster: {rules(cr)}")
case("rbac.scope: cluster: one ClusterRole, the same rules")

objs, _ = render({"auth": {"tokens": TOKENS}, "rbac": {"faults": ["scale"]}})
(role,) = of(objs, "Role")
if any(res in ("pods", "jobs") for _, res, _ in rules(role)):
    fail(f"scale only grants no pod or job verbs: {rules(role)}")
case("only the enabled fault kinds are granted")

objs, _ = render({"auth": {"existingSecret": "mine", "tokens": ""}, "database": {"fromSecret": True},
                  "existingPlaybooksConfigMap": "pbs", "serviceMonitor": {"enabled": True},
                  "podDisruptionBudget": {"enabled": True}})
if of(objs, "Secret") or not of(objs, "ServiceMonitor") or not of(objs, "PodDisruptionBudget"):
    fail("existing Secret, ServiceMonitor, PodDisruptionBudget")
d, c = daemon(objs)
vols = {v["name"]: v for v in d["spec"]["template"]["spec"]["volumes"]}
if vols["playbooks"]["configMap"]["name"] != "pbs" or vols["secret"]["secret"]["secretName"] != "mine":
    fail(f"existing ConfigMap and Secret: {vols}")
case("an existing Secret and ConfigMap, ServiceMonitor, PodDisruptionBudget")

objs, _ = render({"auth": {"tokens": TOKENS}, "playbooks": {"seed.yaml": "apiVersion: drill/v1\nkind: Playbook\n"}})
(pbs,) = [o for o in of(objs, "ConfigMap") if o["metadata"]["name"].endswith("-playbooks")]
if pbs["data"] != {"seed.yaml": "apiVersion: drill/v1\nkind: Playbook\n"}:
    fail(f"playbooks from values: {pbs['data']}")
case("playbooks from values")
# The README's minimal values file.
objs, _ = render({"image": {"repository": "registry.example/drill", "tag": "0.1.0"},
                  "database": {"url": "postgres://drill:PASSWORD@db.chaos:5432/drill"},
                  "rbac": {"targetNamespaces": ["community"]}, "auth": {"tokens": TOKENS},
                  "playbooks": {"staging.yaml": "apiVersion: drill/v1\n"}})
d, c = daemon(objs)
(role,) = [r for r in of(objs, "Role") if not r["metadata"]["name"].endswith("-watchdog")]
if d["spec"]["replicas"] != 2 or c["image"] != "registry.example/drill:0.1.0" or role["metadata"]["namespace"] != "community":
    fail("the README's values file")
case("the README's minimal values file")
# The operator's policy: a ConfigMap drill itself accepts, mounted and passed as --policy;
# without one, no --policy (the daemon's safe default).
d, c = daemon(render({"auth": {"tokens": TOKENS}})[0])
if any(a.startswith("--policy") for a in c["args"]):
    fail(f"no policy in values, yet {c['args']}")
policy = {"allow": {"http": ["*.staging.example.com"], "exec": ["/usr/bin/psql"]},
          "actions": ["stop", "scale"], "limits": {"rate": "500/s"}, "posted": {"env": ["BASE_URL"]}}
objs, _ = render({"auth": {"tokens": TOKENS}, "policy": policy})
(pcm,) = [o for o in of(objs, "ConfigMap") if o["metadata"]["name"].endswith("-policy")]
text = pcm["data"]["policy.yaml"]
doc = yaml.safe_load(text)
if doc["apiVersion"] != "drill/v1" or doc["kind"] != "Policy" or doc["allow"] != policy["allow"]:
    fail(f"the policy ConfigMap: {text}")
d, c = daemon(objs)
mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
if "--policy=/etc/drill/policy/policy.yaml" not in c["args"] or mounts.get("policy") != "/etc/drill/policy":
    fail(f"the policy is not given to the daemon: {c['args']} {mounts}")
if DRILL:
    with tempfile.TemporaryDirectory() as tmp:
        pf = os.path.join(tmp, "policy.yaml")
        open(pf, "w").write(text)
        pb = os.path.join(tmp, "p.yaml")
        open(pb, "w").write("apiVersion: drill/v1\nkind: Playbook\nmetadata: {name: p}\ntarget:\n"
                            "  base_url: https://api.staging.example.com\n"
                            "  allow: {http: [api.staging.example.com]}\n"
                            "traffic:\n  requests: [{name: home, path: /}]\n  profile: [{rate: 10/s, hold: 1m}]\n")
        r = subprocess.run([DRILL, "validate", "--policy", pf, pb], capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"drill refuses the rendered policy: {r.stdout}{r.stderr}")
        prod = open(pb).read().replace("api.staging.example.com", "api.prod.example.com")
        open(pb, "w").write(prod)
        r = subprocess.run([DRILL, "validate", "--policy", pf, pb], capture_output=True, text=True)
        if r.returncode != 2 or "outside the daemon's policy" not in r.stderr:
            fail(f"drill accepts a playbook outside the rendered policy: {r.stdout}{r.stderr}")
objs, _ = render({"auth": {"tokens": TOKENS}, "existingPolicyConfigMap": "ops-policy"})
d, c = daemon(objs)
vols = {v["name"]: v for v in d["spec"]["template"]["spec"]["volumes"]}
if [o for o in of(objs, "ConfigMap") if o["metadata"]["name"].endswith("-policy")] or vols["policy"]["configMap"]["name"] != "ops-policy":
    fail(f"an existing policy ConfigMap: {vols}")
case("the policy: a ConfigMap drill accepts, passed as --policy; none without it")

# The ledger key: one Secret value every daemon and the watchdog read.
objs, _ = render({"auth": {"tokens": TOKENS}, "database": {"url": PG}})
(secret,) = of(objs, "Secret")
if not re.fullmatch(r"[0-9a-f]{64}", secret["stringData"]["DRILL_LEDGER_KEY"]):
    fail(f"DRILL_LEDGER_KEY: {secret['stringData'].get('DRILL_LEDGER_KEY')!r}")
d, c = daemon(objs)
(cron,) = of(objs, "CronJob")
wc = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
for who, env in (("daemon", c["env"]), ("watchdog", wc["env"])):
    ref = [e for e in env if e["name"] == "DRILL_LEDGER_KEY"]
    if not ref or ref[0]["valueFrom"]["secretKeyRef"]["key"] != "DRILL_LEDGER_KEY":
        fail(f"the {who} does not get the ledger key: {env}")
key = "ab" * 32
objs, _ = render({"auth": {"tokens": TOKENS}, "ledger": {"key": key}})
(secret,) = of(objs, "Secret")
if secret["stringData"]["DRILL_LEDGER_KEY"] != key:
    fail("ledger.key is not the Secret's DRILL_LEDGER_KEY")
refused({"auth": {"tokens": TOKENS}, "ledger": {"key": "short"}}, ["ledger"])
case("the ledger key: one Secret, read by the daemons and the watchdog")

# TLS from a Secret: mounted, passed, probed over HTTPS.
objs, _ = render({"auth": {"tokens": TOKENS}, "tls": {"existingSecret": "drill-tls"}})
d, c = daemon(objs)
vols = {v["name"]: v for v in d["spec"]["template"]["spec"]["volumes"]}
if vols["tls"]["secret"]["secretName"] != "drill-tls" or "--tls-cert=/etc/drill/tls/tls.crt" not in c["args"] \
        or "--tls-key=/etc/drill/tls/tls.key" not in c["args"] or c["readinessProbe"]["httpGet"]["scheme"] != "HTTPS":
    fail(f"TLS: {c['args']} {vols.get('tls')} {c['readinessProbe']}")
case("TLS from a Secret")
print("chart: every check held")
