{{/* Name of the release's objects: <release>-medmec unless the release is called medmec. */}}
{{- define "medmec.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Kubernetes recommended labels plus the hospital. */}}
{{- define "medmec.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: medmec
{{- with .Values.hospital.name }}
medmec.io/hospital: {{ . }}
{{- end }}
{{- end -}}

{{- define "medmec.operatorSelector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "medmec.serviceAccountName" -}}
{{- default (printf "%s-operator" (include "medmec.fullname" .)) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "medmec.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The namespaces the operator serves, comma-separated; empty = all namespaces.
     When a list is given, the slices' namespaces are served too. */}}
{{- define "medmec.watchNamespaces" -}}
{{- if .Values.operator.watchNamespaces -}}
{{- $ns := .Values.operator.watchNamespaces -}}
{{- range .Values.slices }}{{ $ns = append $ns .namespace }}{{ end -}}
{{- $ns | uniq | sortAlpha | join "," -}}
{{- end -}}
{{- end -}}

{{/* keep on uninstall: what users' data lives in */}}
{{- define "medmec.keep" -}}
helm.sh/resource-policy: keep
{{- end -}}

{{/* Labels of a platform component's pods: the chart's, the component, and the platform
     selector every slice's NetworkPolicy admits (medmec.operator.meta.PLATFORM_SELECTOR). */}}
{{- define "medmec.componentLabels" -}}
{{ include "medmec.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "medmec.componentSelector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "medmec.platformLabel" -}}
medmec.io/platform: "true"
{{- end -}}

{{- define "medmec.minioImage" -}}
{{- with .Values.modelStore.minio.image -}}
{{- printf "%s:%s" .repository (default $.Chart.AppVersion .tag) -}}
{{- end -}}
{{- end -}}

{{/* host:port of the model store: the values' endpoint, else the in-cluster MinIO. */}}
{{- define "medmec.modelStoreEndpoint" -}}
{{- if .Values.modelStore.endpoint -}}
{{- .Values.modelStore.endpoint -}}
{{- else if .Values.modelStore.minio.enabled -}}
{{- printf "%s-minio.%s.svc:%v" (include "medmec.fullname" .) .Release.Namespace .Values.modelStore.minio.service.port -}}
{{- else -}}
{{- fail "modelStore.endpoint is required when modelStore.minio.enabled is false" -}}
{{- end -}}
{{- end -}}

{{/* The restricted Pod Security Standard for the platform's pods (the image's user). */}}
{{- define "medmec.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
fsGroupChangePolicy: OnRootMismatch
seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{- define "medmec.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities: {drop: [ALL]}
{{- end -}}

{{/* Pod Security Admission labels for a namespace (medmec.operator.meta.POD_SECURITY_LABELS). */}}
{{- define "medmec.podSecurityLabels" -}}
pod-security.kubernetes.io/enforce: {{ .Values.podSecurity.level }}
pod-security.kubernetes.io/enforce-version: latest
pod-security.kubernetes.io/audit: {{ .Values.podSecurity.level }}
pod-security.kubernetes.io/warn: {{ .Values.podSecurity.level }}
{{- end -}}

{{/* NetworkPolicy rules of allowedIngress entries ({cidr} or selectors), one rule each. */}}
{{- define "medmec.allowedIngressRules" -}}
{{- $port := .port -}}
{{- range .entries }}
- from: [{{ ternary (dict "ipBlock" (dict "cidr" .cidr)) (omit . "cidr") (hasKey . "cidr") | toJson }}]
  ports: [{protocol: TCP, port: {{ $port }}}]
{{- end }}
{{- end -}}

{{/* The platform selector as a NetworkPolicy rule: platform pods of any namespace. */}}
{{- define "medmec.platformIngressRule" -}}
- from:
    - namespaceSelector: {}
      podSelector:
        matchLabels: {{- include "medmec.platformLabel" . | nindent 10 }}
{{- end -}}
