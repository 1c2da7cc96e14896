{{- define "datamanager.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "datamanager.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "datamanager.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "datamanager.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "datamanager.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "datamanager.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: datamanager
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "datamanager.selector" -}}
app.kubernetes.io/name: {{ include "datamanager.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "datamanager.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "datamanager.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "datamanager.fullname" .) .Values.serviceAccount.name }}
{{- else if not .Values.serviceAccount.name }}
{{- fail "serviceAccount.name is required with serviceAccount.create=false: name the existing ServiceAccount the operator runs as" }}
{{- else if and .Values.rbac.create (eq .Values.serviceAccount.name "default") }}
{{- fail "serviceAccount.name=default would give the operator's rights to every pod of the namespace without an identity of its own: name a ServiceAccount of the operator's own" }}
{{- else }}
{{- .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "datamanager.consumerServiceAccountName" -}}
{{- $sa := .Values.consumer.serviceAccount }}
{{- if $sa.create }}
{{- default (printf "%s-consumer" (include "datamanager.fullname" .)) $sa.name }}
{{- else if not $sa.name }}
{{- fail "consumer.serviceAccount.name is required with consumer.serviceAccount.create=false: name the existing ServiceAccount the consumer runs as" }}
{{- else }}
{{- $sa.name }}
{{- end }}
{{- end }}

{{- /* The worker image the operator uses when a resource names none. */ -}}
{{- define "datamanager.workerImage" -}}
{{- default (include "datamanager.image" .) .Values.operator.workerImage }}
{{- end }}

{{- /* JSON list: the images spec.job.image may name: the worker image and operator.allowedImages (the operator
gets the same list and checks every run again); `*` at the end: a prefix. */ -}}
{{- define "datamanager.allowedImages" -}}
{{- $images := list (include "datamanager.workerImage" .) }}
{{- range .Values.operator.allowedImages }}
{{- $images = append $images . }}
{{- end }}
{{- toJson (uniq $images) }}
{{- end }}

{{- /* JSON list: the namespaces the operator manages; empty when cluster-wide. */ -}}
{{- define "datamanager.watchNamespaces" -}}
{{- if and .Values.rbac.clusterWide .Values.rbac.watchNamespaces }}
{{- fail "rbac.clusterWide=true and rbac.watchNamespaces exclude each other: set one" }}
{{- else if .Values.rbac.clusterWide }}
{{- toJson list }}
{{- else if .Values.rbac.watchNamespaces }}
{{- toJson .Values.rbac.watchNamespaces }}
{{- else }}
{{- toJson (list .Release.Namespace) }}
{{- end }}
{{- end }}

{{- /* The worker pods' settings, as the operator's environment (docs/operator.md#settings). */}}
{{- define "datamanager.workerEnv" -}}
{{- range $key, $_ := .Values.workers.podLabels }}
{{- if or (hasPrefix "datamanager.petrosa.io/" $key) (eq $key "app.kubernetes.io/instance") }}
{{- fail (printf "workers.podLabels: %q is reserved (datamanager.petrosa.io/ keys are the operator's selector labels; app.kubernetes.io/instance is ArgoCD's tracking label, which would make ArgoCD claim and prune worker pods): use another key" $key) }}
{{- end }}
{{- end }}
{{- $pullSecrets := list }}
{{- range .Values.imagePullSecrets }}
{{- $pullSecrets = append $pullSecrets .name }}
{{- end }}
- name: DATAMANAGER_WORKER_IMAGE_PULL_SECRETS
  value: {{ join "," $pullSecrets | quote }}
- name: DATAMANAGER_WORKER_SERVICE_ACCOUNT
  value: {{ .Values.workers.serviceAccountName | quote }}
- name: DATAMANAGER_WORKER_POD_LABELS
  value: {{ .Values.workers.podLabels | toJson | quote }}
- name: DATAMANAGER_WORKER_POD_ANNOTATIONS
  value: {{ .Values.workers.podAnnotations | toJson | quote }}
{{- end }}
