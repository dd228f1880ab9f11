{{- define "facestream.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "facestream.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "facestream.selectorLabels" -}}
app.kubernetes.io/name: {{ include "facestream.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "facestream.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "facestream.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The health service that says whether the server takes new sessions: the readiness probe's. */}}
{{- define "facestream.healthService" -}}facestream.v1.FaceStream{{- end -}}

{{- define "facestream.authSecret" -}}
{{- .Values.auth.existingSecret | default (printf "%s-auth" (include "facestream.fullname" .)) -}}
{{- end -}}

{{- define "facestream.auth" -}}
{{- if or .Values.auth.existingSecret .Values.auth.apiKeys .Values.auth.jwtSecret -}}true{{- end -}}
{{- end -}}

{{/* "true" when a ServiceMonitor is rendered: asked for, or auto and the Prometheus operator is there. */}}
{{- define "facestream.serviceMonitor" -}}
{{- $want := toString .Values.metrics.serviceMonitor.enabled -}}
{{- if or (eq $want "true") (and (eq $want "auto") (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor")) -}}true{{- end -}}
{{- end -}}

{{/* A probe: the kubelet's gRPC check, or over TLS the image's own (the kubelet's cannot speak TLS). */}}
{{- define "facestream.probe" -}}
{{- if .root.Values.tls.secretName -}}
exec:
  command:
    - python
    - -m
    - facestream.client.probe
    - --address=127.0.0.1:{{ .root.Values.server.port }}
    - --service={{ .service }}
    - --tls-ca-file=/etc/facestream/tls/ca.crt
    - --tls-server-name={{ .root.Values.tls.serverName | default (printf "%s.%s.svc" (include "facestream.fullname" .root) .root.Release.Namespace) }}
    {{- if .root.Values.tls.requireClientCert }}
    - --tls-cert-file=/etc/facestream/tls/tls.crt
    - --tls-key-file=/etc/facestream/tls/tls.key
    {{- end }}
{{- else -}}
grpc:
  port: {{ .root.Values.server.port }}
  {{- if .service }}
  service: {{ .service }}
  {{- end }}
{{- end -}}
{{- end -}}
