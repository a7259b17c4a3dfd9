{{- define "medmec-crds.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: medmec
{{- end -}}

{{/* One CRD from a file, with the chart's labels and (by default) the keep policy. */}}
{{- define "medmec-crds.crd" -}}
{{- $crd := .root.Files.Get .path | fromYaml }}
{{- if .root.Values.keep }}
{{- $_ := set $crd.metadata "annotations" (merge (default (dict) $crd.metadata.annotations) (dict "helm.sh/resource-policy" "keep")) }}
{{- end }}
{{- $_ := set $crd.metadata "labels" (merge (include "medmec-crds.labels" .root | fromYaml) (default (dict) $crd.metadata.labels)) }}
{{- toYaml $crd }}
{{- end -}}
