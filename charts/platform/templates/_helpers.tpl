{{/* Names and labels shared by every template of this chart. */}}
{{- define "platform.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "platform.project" -}}
{{- (.Values.global).project | default .Values.project -}}
{{- end -}}

{{- define "platform.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "platform.labels" -}}
{{ include "platform.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Values.managedBy | default .Release.Service }}
app.kubernetes.io/part-of: clara
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with include "platform.project" . }}
claractl.dev/project: {{ . | quote }}
{{- end }}
{{- end -}}

{{- define "platform.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "platform.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "platform.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{- define "platform.databaseSecret" -}}
{{- .Values.database.existingSecret | default (printf "%s-database" (include "platform.fullname" .)) -}}
{{- end -}}

{{- define "platform.dataClaim" -}}
{{- .Values.persistence.data.existingClaim | default (printf "%s-data" (include "platform.fullname" .)) -}}
{{- end -}}

{{- define "platform.tokenSecret" -}}
{{- .Values.api.tokenSecret | default (ternary (printf "%s-api-token" (include "platform.fullname" .)) "" (ne .Values.api.token "")) -}}
{{- end -}}
