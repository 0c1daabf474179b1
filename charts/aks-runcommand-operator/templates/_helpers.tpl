{{/* Chart name, truncated to a DNS label. */}}
{{- define "aro.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: release name, plus the chart name unless the release name already holds it. */}}
{{- define "aro.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "aro.selectorLabels" -}}
app.kubernetes.io/name: {{ include "aro.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "aro.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "aro.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: aks-runcommand-operator
{{- end -}}

{{- define "aro.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "aro.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "aro.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* "true" when the operator watches the whole cluster (watchNamespaces empty), else "". */}}
{{- define "aro.clusterWide" -}}
{{- if not .Values.watchNamespaces -}}true{{- end -}}
{{- end -}}

{{/* "true" when kopf peering is on: peering.enabled true, or auto with more than one replica. */}}
{{- define "aro.peering" -}}
{{- $enabled := .Values.peering.enabled -}}
{{- if eq (toString $enabled) "auto" -}}
{{- if gt (int .Values.replicaCount) 1 -}}true{{- end -}}
{{- else if $enabled -}}true{{- end -}}
{{- end -}}

{{/*
The operator's shards, as a JSON list: one Deployment (and peering object) each. Without
`shards`, one operator for every object (or for `watchLabelSelector` / `shardKey`); with
`shards: [a, b]`, one per key plus one for objects without the shard label, so nothing is left
unserved. `suffix` names the Deployment and peering object, `name` goes in the pod selector.
*/}}
{{- define "aro.shards" -}}
{{- $label := "sharding.aks.gitops.dev/key" -}}
{{- $shards := list -}}
{{- if .Values.shards -}}
{{- range .Values.shards -}}
{{- $shards = append $shards (dict "suffix" (printf "-shard-%s" .) "name" . "selector" (printf "%s=%s" $label .)) -}}
{{- end -}}
{{- $shards = append $shards (dict "suffix" "-shard-unlabelled" "name" "unlabelled" "selector" (printf "!%s" $label)) -}}
{{- else if .Values.shardKey -}}
{{- $shards = append $shards (dict "suffix" "" "name" "" "selector" (printf "%s=%s" $label .Values.shardKey)) -}}
{{- else -}}
{{- $shards = append $shards (dict "suffix" "" "name" "" "selector" .Values.watchLabelSelector) -}}
{{- end -}}
{{- toJson $shards -}}
{{- end -}}

{{- define "aro.peeringName" -}}
{{- default (include "aro.fullname" .) .Values.peering.name -}}
{{- end -}}

{{/* Refuse value combinations that would deploy a broken or unsafe operator. */}}
{{- define "aro.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not (include "aro.peering" .)) -}}
{{- fail "replicaCount > 1 needs kopf peering (peering.enabled: auto or true): without it every replica would run each RunCommand" -}}
{{- end -}}
{{- if and (gt (int .Values.replicaCount) 1) (not (kindIs "invalid" .Values.peering.priority)) -}}
{{- fail "peering.priority gives every replica the same priority, and kopf pauses all same-priority peers: leave it null with replicaCount > 1" -}}
{{- end -}}
{{- if and .Values.workloadIdentity.enabled (not .Values.workloadIdentity.clientId) -}}
{{- fail "workloadIdentity.enabled needs workloadIdentity.clientId (the user-assigned managed identity's client id)" -}}
{{- end -}}
{{- if and .Values.serviceMonitor.enabled (not .Values.metrics.enabled) -}}
{{- fail "serviceMonitor.enabled needs metrics.enabled (the ServiceMonitor scrapes the metrics Service)" -}}
{{- end -}}
{{- if and (or .Values.prometheusRule.enabled .Values.grafanaDashboard.enabled) (not .Values.metrics.enabled) -}}
{{- fail "prometheusRule.enabled and grafanaDashboard.enabled need metrics.enabled (the alerts and the dashboard read the operator's metrics)" -}}
{{- end -}}
{{- if and .Values.metrics.enabled .Values.liveness.enabled (eq (int .Values.metrics.port) (int .Values.liveness.port)) -}}
{{- fail "metrics.port and liveness.port must differ" -}}
{{- end -}}
{{- end -}}

{{/* RBAC rules the operator needs wherever it serves RunCommands. */}}
{{- define "aro.servingRules" -}}
# RunCommands: watch them, patch kopf's annotations/finalizers, delete finished ones
# (spec.ttlSecondsAfterFinished), and write their status.
# create: a RunCommandSet's children (one RunCommand per target cluster, owned by the set) and a
# RunCommandSchedule's (one per tick); delete: also a schedule's beyond its history limits.
- apiGroups: [aks.gitops.dev]
  resources: [runcommands]
  verbs: [get, list, watch, patch, delete, create]
- apiGroups: [aks.gitops.dev]
  resources: [runcommands/status]
  verbs: [get, patch]
# RunCommandSets: watch them and write their status; create and delete: a schedule's children.
- apiGroups: [aks.gitops.dev]
  resources: [runcommandsets]
  verbs: [get, list, watch, patch, create, delete]
- apiGroups: [aks.gitops.dev]
  resources: [runcommandsets/status]
  verbs: [get, patch]
# RunCommandSchedules: watch them and write their status.
- apiGroups: [aks.gitops.dev]
  resources: [runcommandschedules]
  verbs: [get, list, watch, patch]
- apiGroups: [aks.gitops.dev]
  resources: [runcommandschedules/status]
  verbs: [get, patch]
# Events about each run (kopf posts core/v1 events).
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
# Credentials Secrets and command files: `get` by name only, never list/watch. Each run's
# full output (spec.output): a ConfigMap or Secret the RunCommand owns, created or replaced
# under a name derived from the command id, deleted when the run leaves status.history.
- apiGroups: [""]
  resources: [secrets, configmaps]
  verbs: [get, create, update, delete]
{{- end }}
{{- define "aro.discoveryRules" -}}
# kopf watches CRDs to notice RunCommand API changes without a restart (read-only, no secrets).
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
# kopf lists and watches namespaces even when given exact names; without it, it retries for about
# a minute at start-up and logs a 403 on every re-watch. Before a submission the operator gets the
# run's namespace for its labels, which RunCommandPolicies select by. Namespaces hold no secrets.
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get, list, watch]
# Before a submission: every RunCommandPolicy, which decide whether the run is allowed. Read-only.
- apiGroups: [aks.gitops.dev]
  resources: [runcommandpolicies]
  verbs: [list]
{{- end }}
