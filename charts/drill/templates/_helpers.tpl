{{- define "drill.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "drill.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "drill.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: daemon
{{- end -}}

{{- define "drill.serviceAccount" -}}
{{- default (include "drill.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* "true" when the store is PostgreSQL. */}}
{{- define "drill.postgres" -}}
{{- if or .Values.database.fromSecret (hasPrefix "postgres" .Values.database.url) -}}true{{- end -}}
{{- end -}}

{{/* Daemons: 2 on PostgreSQL, 1 on SQLite; more than 1 on SQLite is refused. */}}
{{- define "drill.replicas" -}}
{{- $pg := include "drill.postgres" . -}}
{{- if kindIs "invalid" .Values.replicaCount -}}
{{- if $pg }}2{{ else }}1{{ end -}}
{{- else -}}
{{- if and (not $pg) (gt (int .Values.replicaCount) 1) -}}
{{- fail (printf "replicaCount is %d but the store is SQLite: one file has one writer. Set database.url to a postgres:// URL (or database.fromSecret) for more daemons, or replicaCount: 1" (int .Values.replicaCount)) -}}
{{- end -}}
{{- .Values.replicaCount -}}
{{- end -}}
{{- end -}}

{{- define "drill.secretName" -}}
{{- default (include "drill.fullname" .) .Values.auth.existingSecret -}}
{{- end -}}

{{- define "drill.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The namespaces the Kubernetes backend may touch. */}}
{{- define "drill.targetNamespaces" -}}
{{- $ns := .Values.rbac.targetNamespaces -}}
{{- if not $ns }}{{ $ns = list .Release.Namespace }}{{ end -}}
{{- toJson $ns -}}
{{- end -}}

{{/* The RBAC rules of the enabled fault kinds: exactly drill_faults::kubernetes::RBAC. */}}
{{- define "drill.faultRules" -}}
{{- $f := .Values.rbac.faults -}}
{{- if has "scale" $f }}
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "patch"]
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["get", "patch"]
{{- end }}
{{- $pods := list -}}
{{- if has "delete-pods" $f }}{{ $pods = concat $pods (list "list" "delete") }}{{ end -}}
{{- if has "load-shards" $f }}{{ $pods = append $pods "watch" }}{{ end -}}
{{- if $pods }}
- apiGroups: [""]
  resources: ["pods"]
  verbs: {{ toJson $pods }}
{{- end }}
{{- if has "load-shards" $f }}
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "create", "delete"]
{{- end }}
{{- end -}}

{{/* What a revert needs (drill recover): restore a workload's scale, wait for pods,
delete a distributed run's leftover shards Job. */}}
{{- define "drill.revertRules" -}}
{{- $f := .Values.rbac.faults -}}
{{- if has "scale" $f }}
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "patch"]
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["get", "patch"]
{{- end }}
{{- if has "delete-pods" $f }}
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
{{- end }}
{{- if has "load-shards" $f }}
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "delete"]
{{- end }}
{{- end -}}

{{/* The ledger key: the value, else the one the chart's Secret holds already (kept across
upgrades), else a new random one (64 hex digits). */}}
{{- define "drill.ledgerKey" -}}
{{- if .Values.ledger.key -}}
{{- .Values.ledger.key -}}
{{- else -}}
{{- $old := lookup "v1" "Secret" .Release.Namespace (include "drill.fullname" .) -}}
{{- if and $old $old.data (index $old.data "DRILL_LEDGER_KEY") -}}
{{- index $old.data "DRILL_LEDGER_KEY" | b64dec -}}
{{- else -}}
{{- randAlphaNum 64 | sha256sum -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "true" when a policy is given. */}}
{{- define "drill.policy" -}}
{{- if or .Values.policy .Values.existingPolicyConfigMap -}}true{{- end -}}
{{- end -}}

{{/* The DRILL_LEDGER_KEY variable of the daemons and the watchdog. */}}
{{- define "drill.ledgerEnv" -}}
- name: DRILL_LEDGER_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "drill.secretName" . }}
      key: DRILL_LEDGER_KEY
      optional: {{ if .Values.auth.existingSecret }}true{{ else }}false{{ end }}
{{- end -}}
