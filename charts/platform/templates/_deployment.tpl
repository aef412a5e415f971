{{/*
One Deployment of the platform process. Called with a dict:
  root       the chart's context (.)
  name       Deployment name
  component  app.kubernetes.io/component of its pods ("server": the one all-in-one pod)
  roles      `platform serve --roles` ("" = all, one process)
  replicas   pod count
  selector   true: the component is part of the selector (high availability: three Deployments
             whose pods must not select each other); false: the all-in-one pod's selector
  grace      terminationGracePeriodSeconds ("" = Kubernetes' default)
  preStop    seconds a stopping pod keeps serving while its endpoint is removed (0 = none)
*/}}
{{- define "platform.deployment" -}}
{{- $ := .root -}}
{{- $ha := $.Values.highAvailability.enabled -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .name }}
  namespace: {{ $.Release.Namespace }}
  labels:
    {{- include "platform.labels" $ | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  {{- if $ha }}
  replicas: {{ .replicas }}
  # A new pod is Ready before an old one stops: the role never has fewer ready pods than asked.
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxUnavailable: 0, maxSurge: 1}
  {{- else }}
  # One writer: SQLite on a volume and the in-process DICOM SCP/engine are single-instance.
  replicas: 1
  strategy:
    type: Recreate
  {{- end }}
  selector:
    matchLabels:
      {{- include "platform.selectorLabels" $ | nindent 6 }}
      {{- if .selector }}
      app.kubernetes.io/component: {{ .component }}
      {{- end }}
  template:
    metadata:
      labels:
        {{- include "platform.labels" $ | nindent 8 }}
        app.kubernetes.io/component: {{ .component }}
      annotations:
        # Roll the pod when the platform settings change.
        checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") $ | sha256sum }}
        {{- with $.Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "platform.serviceAccountName" $ }}
      {{- with $.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $.Values.podSecurityContext | nindent 8 }}
      {{- if .grace }}
      terminationGracePeriodSeconds: {{ .grace }}
      {{- end }}
      containers:
        - name: platform
          image: {{ include "platform.image" $ }}
          imagePullPolicy: {{ $.Values.image.pullPolicy }}
          command: ["claractl", "platform", "serve", "--state-dir", "/var/lib/clara", "--config", "/etc/clara/platform.json"
            {{- if .roles }}, "--roles", {{ .roles | quote }}, "--replica", "$(CLARA_POD_NAME)"{{ end }}]
          ports:
            - {name: http, containerPort: {{ $.Values.api.port }}, protocol: TCP}
            - {name: grpc, containerPort: {{ $.Values.api.grpcPort }}, protocol: TCP}
            {{- if and $.Values.dicom.enabled (or (not .roles) (eq .roles "dicom")) }}
            - {name: dicom, containerPort: {{ $.Values.dicom.port }}, protocol: TCP}
            {{- end }}
            {{- if and $.Values.render.enabled (or (not .roles) (eq .roles "api")) }}
            - {name: render, containerPort: {{ $.Values.render.port }}, protocol: TCP}
            {{- end }}
          env:
            {{- if .roles }}
            - name: CLARA_POD_NAME
              valueFrom: {fieldRef: {fieldPath: metadata.name}}
            {{- end }}
            - name: CLARA_K8S_NAMESPACE
              valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
            - {name: CLARA_K8S_SERVICE_ACCOUNT, value: {{ include "platform.serviceAccountName" $ | quote }}}
            - {name: CLARA_K8S_DATA_CLAIM, value: {{ include "platform.dataClaim" $ | quote }}}
            - {name: CLARA_K8S_OPERATOR_IMAGE, value: {{ include "platform.image" $ | quote }}}
            - {name: CLARA_K8S_OPERATOR_PULL_POLICY, value: {{ $.Values.operatorImagePullPolicy | quote }}}
            - {name: CLARA_K8S_OWNER_DEPLOYMENT, value: {{ .name | quote }}}
            # How operator Jobs reach the platform API (register-results): the Service, and the token's Secret.
            - {name: CLARA_K8S_PLATFORM_URL, value: {{ printf "http://%s.%s.svc:%v" (include "platform.fullname" $) $.Release.Namespace $.Values.api.port | quote }}}
            {{- with $.Values.persistence.models.existingClaim }}
            - {name: CLARA_K8S_MODELS_CLAIM, value: {{ . | quote }}}
            {{- end }}
            {{- with $.Values.inference.grpcUrl }}
            - {name: CLARA_INFERENCE_GRPC_URL, value: {{ . | quote }}}
            {{- end }}
            {{- if eq $.Values.database.type "external" }}
            - name: CLARA_DATABASE_URL
              valueFrom:
                secretKeyRef: {name: {{ include "platform.databaseSecret" $ | quote }}, key: {{ $.Values.database.urlKey | quote }}}
            {{- else if eq $.Values.database.type "postgresql" }}
            # The project's PostgreSQL (postgresql chart): the password from its Secret, the URL built here.
            - name: CLARA_DATABASE_PASSWORD
              valueFrom:
                secretKeyRef: {name: {{ $.Values.database.passwordSecret | quote }}, key: password}
            - {name: CLARA_DATABASE_URL, value: {{ printf "postgresql+psycopg://%s:$(CLARA_DATABASE_PASSWORD)@%s:%v/%s" $.Values.database.user $.Values.database.host $.Values.database.port $.Values.database.name | quote }}}
            {{- end }}
            {{- with include "platform.tokenSecret" $ }}
            - name: CLARA_API_TOKEN
              valueFrom:
                secretKeyRef: {name: {{ . | quote }}, key: token}
            - {name: CLARA_K8S_API_TOKEN_SECRET, value: {{ . | quote }}}
            {{- end }}
          {{- if .preStop }}
          lifecycle:
            # The pod is being removed from its Services' endpoints meanwhile: it keeps serving
            # whatever still arrives, and is told to stop (SIGTERM) once nothing new is routed to it.
            preStop:
              exec: {command: ["sleep", {{ .preStop | quote }}]}
          {{- end }}
          startupProbe:
            httpGet: {path: /health/live, port: http}
            periodSeconds: 2
            failureThreshold: 60
          livenessProbe:
            httpGet: {path: /health/live, port: http}
            periodSeconds: 10
            failureThreshold: 3
          readinessProbe:
            httpGet: {path: /health/ready, port: http}
            {{- if $ha }}
            periodSeconds: 2
            failureThreshold: 2
            {{- else }}
            periodSeconds: 5
            failureThreshold: 3
            {{- end }}
          resources:
            {{- toYaml $.Values.resources | nindent 12 }}
          securityContext:
            {{- toYaml $.Values.securityContext | nindent 12 }}
          volumeMounts:
            - {name: data, mountPath: /var/lib/clara}
            - {name: config, mountPath: /etc/clara, readOnly: true}
            - {name: tmp, mountPath: /tmp}
            {{- if $.Values.persistence.models.existingClaim }}
            - {name: models, mountPath: /var/lib/clara/models}
            {{- end }}
      volumes:
        - name: data
          persistentVolumeClaim: {claimName: {{ include "platform.dataClaim" $ | quote }}}
        - name: config
          configMap: {name: {{ include "platform.fullname" $ }}}
        - name: tmp
          emptyDir: {}
        {{- with $.Values.persistence.models.existingClaim }}
        - name: models
          persistentVolumeClaim: {claimName: {{ . | quote }}}
        {{- end }}
      {{- with $.Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $.Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if $.Values.affinity }}
      affinity:
        {{- toYaml $.Values.affinity | nindent 8 }}
      {{- else if $ha }}
      # Replicas of a role on different nodes where there are several (preferred: one node works too).
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels:
                    {{- include "platform.selectorLabels" $ | nindent 20 }}
                    app.kubernetes.io/component: {{ .component }}
      {{- end }}
{{- end -}}

{{/* A PodDisruptionBudget for a role with several replicas: a node drain takes one pod at a time. */}}
{{- define "platform.pdb" -}}
{{- if gt (int .replicas) 1 }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ .name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "platform.labels" .root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  maxUnavailable: 1
  selector:
    matchLabels:
      {{- include "platform.selectorLabels" .root | nindent 6 }}
      app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end -}}
