{{/* vim: set filetype=mustache: */}}

{{- define "events-cache.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "events-cache.fullname" -}}
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

{{- define "events-cache.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: name and instance only (never the chart version). */}}
{{- define "events-cache.selectorLabels" -}}
app.kubernetes.io/name: {{ include "events-cache.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
events-cache.mergeMaps: one mapping (labels or annotations) from a list of maps, the first
map's keys winning over the later ones', so no key is ever written twice.
*/}}
{{- define "events-cache.mergeMaps" -}}
{{- $out := dict -}}
{{- range . }}{{ $out = merge $out (deepCopy (. | default dict)) }}{{ end -}}
{{- with $out }}{{ toYaml . }}{{ end -}}
{{- end -}}

{{/*
events-cache.labelsWith: the chart's labels, then the maps of `extra` in order, then
commonLabels; earlier ones win, so the selector labels always hold. Call with
(dict "ctx" . "extra" (list map...)).
*/}}
{{- define "events-cache.labelsWith" -}}
{{- $ctx := .ctx -}}
{{- $own := dict
  "helm.sh/chart" (include "events-cache.chart" $ctx)
  "app.kubernetes.io/name" (include "events-cache.name" $ctx)
  "app.kubernetes.io/instance" $ctx.Release.Name
  "app.kubernetes.io/version" ($ctx.Chart.AppVersion | toString)
  "app.kubernetes.io/managed-by" $ctx.Release.Service -}}
{{- include "events-cache.mergeMaps" (concat (list $own) (.extra | default list) (list $ctx.Values.commonLabels)) -}}
{{- end -}}

{{- define "events-cache.labels" -}}
{{- include "events-cache.labelsWith" (dict "ctx" .) -}}
{{- end -}}

{{/*
events-cache.podLabels: the one label the query Service and the PodMonitor select, a key of
this chart's own (it never collides with a pod's labels) with the release's full name as
value (two releases in a namespace never select each other's pods). The chart's Deployment
carries it; from a parent chart, add it to your pod template's labels:
  {{- include "events-cache.podLabels" (index .Subcharts "events-cache") | nindent 8 }}
*/}}
{{- define "events-cache.podLabels" -}}
events-cache.io/sidecar: {{ include "events-cache.fullname" . | quote }}
{{- end -}}

{{- define "events-cache.redis.fullname" -}}
{{- printf "%s-redis" (include "events-cache.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "events-cache.redis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "events-cache.name" . }}-redis
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "events-cache.redis.labels" -}}
{{- $own := dict
  "helm.sh/chart" (include "events-cache.chart" .)
  "app.kubernetes.io/name" (printf "%s-redis" (include "events-cache.name" .))
  "app.kubernetes.io/instance" .Release.Name
  "app.kubernetes.io/component" "redis"
  "app.kubernetes.io/managed-by" .Release.Service -}}
{{- include "events-cache.mergeMaps" (list $own .Values.commonLabels) -}}
{{- end -}}

{{- define "events-cache.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "events-cache.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
An image reference from {repository, tag, digest}: repo:tag, repo@digest or
repo:tag@digest. Call with (dict "image" .Values.image "default" .Chart.AppVersion).
*/}}
{{- define "events-cache.imageRef" -}}
{{- $tag := default .default .image.tag | toString -}}
{{- if and .image.digest $tag -}}
{{- printf "%s:%s@%s" .image.repository $tag .image.digest -}}
{{- else if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "events-cache.image" -}}
{{- include "events-cache.imageRef" (dict "image" .Values.image "default" .Chart.AppVersion) -}}
{{- end -}}

{{- define "events-cache.socketPath" -}}
{{- printf "%s/%s" (trimSuffix "/" .Values.socket.dir) .Values.socket.name -}}
{{- end -}}

{{- define "events-cache.configMapName" -}}
{{- include "events-cache.fullname" . -}}
{{- end -}}

{{- define "events-cache.secretName" -}}
{{- include "events-cache.fullname" . -}}
{{- end -}}

{{/* The Secret holding the admin token: the user's or the chart's. */}}
{{- define "events-cache.adminTokenSecret" -}}
{{- default (include "events-cache.secretName" .) .Values.auth.existingSecret -}}
{{- end -}}

{{/* Whether the sidecar gets a Redis password, and from which Secret. */}}
{{- define "events-cache.redisPasswordSecret" -}}
{{- if .Values.redis.enabled -}}
{{- if .Values.redis.auth.enabled -}}{{ include "events-cache.secretName" . }}{{- end -}}
{{- else if .Values.externalRedis.existingSecret -}}
{{- .Values.externalRedis.existingSecret -}}
{{- else if .Values.externalRedis.password -}}
{{- include "events-cache.secretName" . -}}
{{- end -}}
{{- end -}}

{{- define "events-cache.redisPasswordKey" -}}
{{- if .Values.redis.enabled -}}redis-password{{- else -}}{{ .Values.externalRedis.existingSecretPasswordKey }}{{- end -}}
{{- end -}}

{{/* Whether the chart's own Secret has anything to hold. */}}
{{- define "events-cache.chartSecretNeeded" -}}
{{- if or (not .Values.auth.existingSecret) (and .Values.redis.enabled .Values.redis.auth.enabled) (and (not .Values.redis.enabled) (not .Values.externalRedis.existingSecret) .Values.externalRedis.password) -}}true{{- end -}}
{{- end -}}

{{/*
A secret value generated once and kept: the value given, else the one already in the
release's Secret (lookup; empty under `helm template`), else a new random one.
Call with (dict "ctx" . "key" "admin-token" "value" .Values.auth.adminToken "length" 40).
*/}}
{{- define "events-cache.keptSecret" -}}
{{- if .value -}}
{{- .value -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace (include "events-cache.secretName" .ctx) -}}
{{- if and $existing $existing.data (hasKey $existing.data .key) -}}
{{- index $existing.data .key | b64dec -}}
{{- else -}}
{{- randAlphaNum (int .length) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The Redis part of the daemon configuration (meta.storage.redis without secrets). */}}
{{- define "events-cache.redisConfig" -}}
{{- if .Values.redis.enabled -}}
host: {{ include "events-cache.redis.fullname" . }}.{{ .Release.Namespace }}.svc
port: 6379
database: 0
{{- else -}}
{{- $r := .Values.externalRedis -}}
{{- if not $r.host -}}
{{- fail "events-cache needs a Redis: set externalRedis.host (host, or redis://, rediss://, sentinel:// URL) or redis.enabled=true for a trial Redis" -}}
{{- end -}}
{{- if and $r.cluster $r.sentinel.masterName -}}
{{- fail "externalRedis.cluster and externalRedis.sentinel.masterName cannot be combined" -}}
{{- end -}}
{{- $host := $r.host -}}
{{- if and $r.tls.enabled (not (contains "://" $host)) (not $r.tls.caSecret) (not $r.tls.skipVerify) -}}
{{- if or $r.sentinel.masterName $r.cluster -}}
{{- fail "externalRedis.tls with Sentinel or Cluster needs externalRedis.tls.caSecret (or skipVerify)" -}}
{{- end -}}
{{- /* TLS with the system CAs: the rediss:// scheme asks for it. */ -}}
{{- $host = printf "rediss://%s:%d/%d" $host (int $r.port) (int $r.database) -}}
{{- end -}}
host: {{ $host | quote }}
port: {{ int $r.port }}
database: {{ int $r.database }}
username: {{ $r.username | quote }}
sentinel_master_name: {{ $r.sentinel.masterName | quote }}
cluster: {{ $r.cluster }}
tls_skip_verify: {{ and $r.tls.enabled $r.tls.skipVerify }}
{{- if and $r.tls.enabled $r.tls.caSecret }}
tls_ca_file: /etc/events-cache/redis-tls/ca.crt
{{- end }}
{{- end }}
{{- end -}}

{{/* The daemon configuration file: values.config over the chart's computed keys. */}}
{{- define "events-cache.config" -}}
{{- $computed := dict
  "meta" (dict "storage" (dict "redis" (include "events-cache.redisConfig" . | fromYaml)))
  "sidecar" (dict
    "ingest" (dict
      "socket" (include "events-cache.socketPath" .)
      "listen" (ternary (printf "127.0.0.1:%d" (int .Values.sidecar.ingestPort)) "" (gt (int .Values.sidecar.ingestPort) 0)))
    "api" (dict "listen" (printf "0.0.0.0:%d" (int .Values.sidecar.apiPort)))) -}}
{{- $user := deepCopy (.Values.config | default dict) -}}
{{- $merged := mergeOverwrite $user $computed -}}
{{- toYaml $merged -}}
{{- end -}}

{{- define "events-cache.terminationGracePeriodSeconds" -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds -}}
{{- /* The daemon's own defaults (files/daemon-defaults.yaml, generated from its model) under values.config. */ -}}
{{- $config := mergeOverwrite (.Files.Get "files/daemon-defaults.yaml" | fromYaml) (deepCopy (.Values.config | default dict)) -}}
{{- $drain := int (ceil $config.sidecar.shutdown.drain_seconds) -}}
{{- $flush := int (ceil $config.sidecar.shutdown.flush_timeout_seconds) -}}
{{- add (int .Values.ingest.shutdownSeconds) $drain $flush 5 -}}
{{- else -}}
{{- int .Values.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}

{{/* Annotations that roll the pods when the configuration or the chart's Secret changes. */}}
{{- define "events-cache.checksumAnnotations" -}}
checksum/config: {{ include "events-cache.config" . | sha256sum | quote }}
checksum/secret: {{ printf "%s|%s|%s|%s" .Values.auth.existingSecret .Values.externalRedis.existingSecret (.Values.auth.adminToken | sha256sum) (.Values.externalRedis.password | sha256sum) | sha256sum | quote }}
{{- end -}}

{{/*
events-cache.sidecar: the sidecar container, one list item. Put it under initContainers
(native sidecar, the default: it carries restartPolicy: Always) or under containers when
sidecar.native is false. Call it with this chart's context; from a parent chart that
has this chart as the dependency `events-cache`:
  initContainers:
    {{- include "events-cache.sidecar" (index .Subcharts "events-cache") | nindent 4 }}
and add the volumes with events-cache.volumes, events-cache.ingestEnv /
events-cache.ingestVolumeMounts to your ingest container, and events-cache.podLabels to
your pod labels (the chart README shows it as a patch of a `helm create` chart).
*/}}
{{- define "events-cache.sidecar" -}}
- name: {{ .Values.sidecar.name }}
  image: {{ include "events-cache.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  {{- if .Values.sidecar.native }}
  restartPolicy: Always
  {{- end }}
  args:
    - --config
    - /etc/events-cache/config.yaml
    {{- with .Values.sidecar.extraArgs }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  env:
    - name: EVENTS_CACHE_ADMIN_TOKEN_FILE
      value: /etc/events-cache/secrets/admin-token
    {{- if include "events-cache.redisPasswordSecret" . }}
    - name: EVENTS_CACHE_REDIS_PASSWORD_FILE
      value: /etc/events-cache/secrets/redis-password
    {{- end }}
    {{- with .Values.sidecar.env }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.sidecar.envFrom }}
  envFrom:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  ports:
    - name: api
      containerPort: {{ int .Values.sidecar.apiPort }}
      protocol: TCP
  {{- with .Values.sidecar.startupProbe }}
  startupProbe:
    {{- tpl (toYaml .) $ | nindent 4 }}
  {{- end }}
  {{- with .Values.sidecar.livenessProbe }}
  livenessProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.sidecar.readinessProbe }}
  readinessProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.sidecar.lifecycle }}
  lifecycle:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.sidecar.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.sidecar.securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    - name: events-cache-socket
      mountPath: {{ .Values.socket.dir }}
    - name: events-cache-config
      mountPath: /etc/events-cache/config.yaml
      subPath: config.yaml
      readOnly: true
    - name: events-cache-secrets
      mountPath: /etc/events-cache/secrets
      readOnly: true
    {{- if and (not .Values.redis.enabled) .Values.externalRedis.tls.enabled .Values.externalRedis.tls.caSecret }}
    - name: events-cache-redis-tls
      mountPath: /etc/events-cache/redis-tls
      readOnly: true
    {{- end }}
    - name: events-cache-tmp
      mountPath: /tmp
    {{- with .Values.sidecar.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}

{{/* events-cache.volumes: the pod volumes the sidecar and the ingest need (list items). */}}
{{- define "events-cache.volumes" -}}
- name: events-cache-socket
  emptyDir:
    {{- with .Values.socket.medium }}
    medium: {{ . }}
    {{- end }}
    {{- with .Values.socket.sizeLimit }}
    sizeLimit: {{ . }}
    {{- end }}
- name: events-cache-tmp
  emptyDir:
    sizeLimit: 16Mi
- name: events-cache-config
  configMap:
    name: {{ include "events-cache.configMapName" . }}
- name: events-cache-secrets
  projected:
    defaultMode: 0440
    sources:
      - secret:
          name: {{ include "events-cache.adminTokenSecret" . }}
          items:
            - key: {{ .Values.auth.adminTokenKey }}
              path: admin-token
      {{- with include "events-cache.redisPasswordSecret" . }}
      - secret:
          name: {{ . }}
          items:
            - key: {{ include "events-cache.redisPasswordKey" $ }}
              path: redis-password
      {{- end }}
{{- if and (not .Values.redis.enabled) .Values.externalRedis.tls.enabled .Values.externalRedis.tls.caSecret }}
- name: events-cache-redis-tls
  secret:
    secretName: {{ .Values.externalRedis.tls.caSecret }}
    defaultMode: 0440
    items:
      - key: {{ .Values.externalRedis.tls.caKey }}
        path: ca.crt
{{- end }}
{{- end -}}

{{/* events-cache.ingestEnv: env entries for the ingest container (list items). */}}
{{- define "events-cache.ingestEnv" -}}
- name: EVENTS_CACHE_SOCKET
  value: {{ include "events-cache.socketPath" . | quote }}
{{- if gt (int .Values.sidecar.ingestPort) 0 }}
- name: EVENTS_CACHE_URL
  value: {{ printf "http://127.0.0.1:%d" (int .Values.sidecar.ingestPort) | quote }}
{{- end }}
{{- end -}}

{{/* events-cache.ingestVolumeMounts: the socket volume for the ingest container. */}}
{{- define "events-cache.ingestVolumeMounts" -}}
- name: events-cache-socket
  mountPath: {{ .Values.socket.dir }}
{{- end -}}

{{/*
events-cache.demo: the demo container (one list item): `events-cache demo` from the
sidecar's image, over the socket, with the sidecar's restricted security context. It
waits up to a minute for the socket (a classic sidecar may start after it).
*/}}
{{- define "events-cache.demo" -}}
- name: demo
  image: {{ include "events-cache.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args:
    - demo
    - --socket
    - {{ include "events-cache.socketPath" . | quote }}
    - --rate
    - {{ .Values.demo.rate | toString | quote }}
    - --ids
    - {{ .Values.demo.ids | int | toString | quote }}
    - --error-ratio
    - {{ .Values.demo.errorRatio | toString | quote }}
    - --wait
    - "60"
  {{- with .Values.demo.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.sidecar.securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    {{- include "events-cache.ingestVolumeMounts" . | nindent 4 }}
{{- end -}}
