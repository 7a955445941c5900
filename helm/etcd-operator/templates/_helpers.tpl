{{/* Release-scoped name prefix of every object. */}}
{{- define "etcd-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of a component's objects; call with (dict "root" $ "component" "cluster-service"). */}}
{{- define "etcd-operator.labels" -}}
app.kubernetes.io/name: {{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/part-of: etcd-operator
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{/* Selector labels of a component's pods. */}}
{{- define "etcd-operator.selector" -}}
app.kubernetes.io/name: {{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* Image of a component: its own repository/tag, else the chart's. */}}
{{- define "etcd-operator.image" -}}
{{- $repo := .image.repository | default .root.Values.image.repository -}}
{{- $tag := .image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{/* Name of a component's objects (Deployment, ServiceAccount, RBAC). */}}
{{- define "etcd-operator.component" -}}
{{- printf "%s-%s" (include "etcd-operator.fullname" .root) .component -}}
{{- end -}}

{{/* The cluster-service's in-cluster gRPC address. */}}
{{/* The ConfigMap (and Secret) of the API's CA: made by the cluster-service, not by Helm, so
     upgrades and offline renders keep it. */}}
{{- define "etcd-operator.apiCa" -}}
{{- printf "%s-api-ca" (include "etcd-operator.fullname" .) -}}
{{- end -}}

{{/* The Secret holding the API's CA: the one the cluster-service makes, or one given. */}}
{{- define "etcd-operator.apiCaSecret" -}}
{{- .Values.api.caSecretName | default (include "etcd-operator.apiCa" .) -}}
{{- end -}}

{{- define "etcd-operator.grpcEndpoint" -}}
{{- printf "https://%s-cluster-service.%s.svc.%s:%v" (include "etcd-operator.fullname" .) .Release.Namespace .Values.clusterDomain .Values.clusterService.service.port -}}
{{- end -}}

{{/* Environment every operator process reads. */}}
{{- define "etcd-operator.commonEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: LOG_FORMAT
  value: {{ .Values.logging.format | quote }}
- name: RUST_LOG
  value: {{ .Values.logging.level | quote }}
{{- with .Values.tracing.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* Scheduling of a component's pods. */}}
{{- define "etcd-operator.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
RBAC of a component over the objects the operator manages: ClusterRole(+Binding) when the
operator watches every namespace, a Role(+Binding) in the watched namespace otherwise.
Call with (dict "root" $ "component" "x" "rules" (list ...)).
*/}}
{{- define "etcd-operator.rbac" -}}
{{- $name := include "etcd-operator.component" . -}}
{{- $scoped := .root.Values.watchNamespace -}}
apiVersion: rbac.authorization.k8s.io/v1
kind: {{ ternary "Role" "ClusterRole" (ne $scoped "") }}
metadata:
  name: {{ $name }}
  {{- if $scoped }}
  namespace: {{ $scoped }}
  {{- end }}
  labels:
    {{- include "etcd-operator.labels" . | nindent 4 }}
rules:
  {{- toYaml .rules | nindent 2 }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: {{ ternary "RoleBinding" "ClusterRoleBinding" (ne $scoped "") }}
metadata:
  name: {{ $name }}
  {{- if $scoped }}
  namespace: {{ $scoped }}
  {{- end }}
  labels:
    {{- include "etcd-operator.labels" . | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: {{ ternary "Role" "ClusterRole" (ne $scoped "") }}
  name: {{ $name }}
subjects:
  - kind: ServiceAccount
    name: {{ $name }}
    namespace: {{ .root.Release.Namespace }}
{{- end -}}

{{- /* A duration of the schema's form (500ms, 15s, 5m, 1h) in milliseconds. */ -}}
{{- define "etcd-operator.millis" -}}
{{- $n := int64 (regexFind "^[0-9]+" .) -}}
{{- $unit := regexFind "(ms|s|m|h)$" . -}}
{{- $per := dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000 -}}
{{- mul $n (index $per $unit) -}}
{{- end -}}

{{- /* Fails on leader-election settings a Lease cannot work with: the leader must renew before it
       expires, so the grace must be shorter than the lease. `where` names the values. */ -}}
{{- define "etcd-operator.checkLease" -}}
{{- $lease := int64 (include "etcd-operator.millis" .lease.leaseDuration) -}}
{{- $grace := int64 (include "etcd-operator.millis" .lease.renewGrace) -}}
{{- if ge $grace $lease -}}
{{- fail (printf "%s.renewGrace (%s) must be shorter than %s.leaseDuration (%s): a leader that renews only that late has already lost its Lease" .where .lease.renewGrace .where .lease.leaseDuration) -}}
{{- end -}}
{{- end -}}
