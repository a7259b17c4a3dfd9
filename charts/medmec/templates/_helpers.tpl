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
