{{- define "policygate.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "policygate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "policygate.labels" -}}
app.kubernetes.io/name: {{ include "policygate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "policygate.selector" -}}
app.kubernetes.io/name: {{ include "policygate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "policygate.bundleServiceUrl" -}}
{{- if .Values.opa.bundleServiceUrl -}}
{{- .Values.opa.bundleServiceUrl -}}
{{- else -}}
{{- printf "http://%s.%s.svc:%v/v1" (include "policygate.fullname" .) .Release.Namespace .Values.service.port -}}
{{- end -}}
{{- end -}}
