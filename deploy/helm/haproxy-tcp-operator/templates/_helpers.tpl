{{/* The name every object carries, as deploy/default names them. */}}
{{- define "haproxy-tcp-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Labels on every object: deploy/default's part-of label plus Helm's own.
*/}}
{{- define "haproxy-tcp-operator.labels" -}}
app.kubernetes.io/part-of: haproxy-tcp-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The Pod selector; the same as deploy/manager's, so it cannot change on upgrade. */}}
{{- define "haproxy-tcp-operator.selectorLabels" -}}
app.kubernetes.io/name: haproxy-tcp-operator
{{- end -}}

{{/*
The rules of the object of one kind in a file make helm copied from
deploy/rbac, so the chart grants exactly what kustomize grants.
*/}}
{{- define "haproxy-tcp-operator.rules" -}}
{{- range regexSplit "(?m)^---\\s*$" (.root.Files.Get .path) -1 }}
{{- $doc := fromYaml . }}
{{- if eq (get $doc "kind") $.kind }}
{{- toYaml (get $doc "rules") }}
{{- end }}
{{- end }}
{{- end -}}
