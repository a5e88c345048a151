#!/usr/bin/env bash
# Proves that the validation fails on broken manifests: breaks them one way
# at a time, in a copy of the repository, and expects the tests to fail each
# time. Prints one line per break: "ok" with the first errors, or "!!".
# Not part of the suite (about a minute); run it after changing the tests.
#
#   deployments/validate/mutations.sh
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rsync -a --exclude /.git --exclude /bin --exclude /.build --exclude /data --exclude /frontend/node_modules "$src/" "$work/repo/"
if [[ -z ${SHOAL_BIN:-} ]]; then
	(cd "$src" && go build -o "$work/shoal" ./cmd/shoal) || exit 1
	SHOAL_BIN=$work/shoal
fi
cd "$work/repo/deployments/validate"
go test -c -o "$work/validate.test" . >/dev/null || exit 1
k=../kubernetes c=../compose
failures=0
# The test that compares the dashboard with a running process's metrics
# needs ONNX Runtime and the demo data, and takes a minute: only the breaks
# it alone catches run it (live=1).
live=
# mutate NAME FILE SED-EXPR, or mutate NAME - 'CMD:shell command'
mutate() {
	rsync -a --delete --exclude validate "$src/deployments/" "$work/repo/deployments/"
	if [[ $3 == CMD:* ]]; then
		eval "${3#CMD:}"
	else
		cp "$2" "$work/before"
		sed -i "$3" "$2"
		if cmp -s "$2" "$work/before"; then
			echo "!! $1: the sed expression changed nothing"
			failures=$((failures + 1))
			return
		fi
	fi
	local out
	local env=(-u ONNXRUNTIME_SHARED_LIBRARY_PATH -u SHOAL_TEST_ORT_REQUIRED -u SHOAL_TEST_DEMO_REQUIRED)
	if [[ -n $live ]]; then
		env=("ONNXRUNTIME_SHARED_LIBRARY_PATH=$("$src/scripts/setup-onnxruntime.sh")" SHOAL_TEST_ORT_REQUIRED=1 SHOAL_TEST_DEMO_REQUIRED=1)
	fi
	if out=$(env "${env[@]}" SHOAL_BIN=$SHOAL_BIN "$work/validate.test" -test.count=1 2>&1); then
		echo "!! $1: the tests PASSED"
		failures=$((failures + 1))
	else
		echo "ok $1 -> $(grep -E '^\s+\S+_test.go:[0-9]+:' <<<"$out" | grep -v ' calls \[' | head -2 | sed 's/^ *//' | cut -c1-200 | paste -sd'|')"
	fi
}
mutate "k8s: typo'd field readinesProbe" $k/registry.yaml 's/readinessProbe:/readinesProbe:/'
mutate "k8s: typo'd nested field" $k/dataset.yaml 's/allowPrivilegeEscalation:/allowPrivilegeEscalaton:/'
mutate "k8s: liveness probe removed" $k/inference.yaml '/livenessProbe:/,/failureThreshold: 3/d'
mutate "k8s: unknown target" $k/registry.yaml 's/--target=registry/--target=registy/'
mutate "k8s: grace period too short" $k/trainer.yaml 's/terminationGracePeriodSeconds: 35/terminationGracePeriodSeconds: 20/'
mutate "k8s: wrong peer port" $k/trainer.yaml 's/dataset.shoal.svc:9090/dataset.shoal.svc:9091/'
mutate "k8s: peer by bare name" $k/gateway.yaml 's/inference.shoal.svc:9090/inference:9090/'
mutate "k8s: missing client address" $k/inference.yaml '/--clients.registry-address/d'
mutate "k8s: superfluous client address" $k/registry.yaml 's/- --target=registry/- --target=registry\n            - --clients.dataset-address=dataset.shoal.svc:9090/'
mutate "k8s: Service selects nothing" $k/registry.yaml '/^kind: Service/,$s/component: registry/component: registy/'
mutate "k8s: secret key typo" $k/dataset.yaml 's/key: db-dsn/key: db_dsn/'
mutate "k8s: local blobs in shoal.yaml" $k/shoal.yaml 's/backend: s3/backend: local/'
mutate "k8s: unknown setting in shoal.yaml" $k/shoal.yaml 's/shutdown-delay: 5s/shutdown-dealy: 5s/'
mutate "k8s: file not in kustomization" - 'CMD:printf "apiVersion: v1\nkind: Service\n" > ../kubernetes/ingress.yaml'
mutate "k8s: readOnlyRootFilesystem false" $k/gateway.yaml 's/readOnlyRootFilesystem: true/readOnlyRootFilesystem: false/'
mutate "k8s: memory limit removed" $k/gateway.yaml '/limits:/,/memory: 512Mi/{/memory: 512Mi/d}'
mutate "k8s: inference 1 replica" $k/inference.yaml 's/replicas: 2/replicas: 1/'
mutate "k8s: HPA points elsewhere" $k/inference.yaml '/scaleTargetRef:/,/name: inference/s/name: inference/name: inferense/'
mutate "k8s: startup probe wrong service" $k/trainer.yaml 's/service: shoal.trainer.v1.TrainerService/service: shoal.registry.v1.RegistryService/'
mutate "compose: unknown target" $c/compose.yaml 's/--target=dataset/--target=datasets/'
mutate "compose: typo'd field" $c/compose.yaml 's/^  stop_grace_period: 30s/  stop_grace_periode: 30s/'
mutate "compose: grace period too short" $c/compose.yaml 's/^  stop_grace_period: 30s/  stop_grace_period: 10s/'
mutate "compose: depends_on service_started" $c/compose.yaml '/^  trainer:/,/^  inference:/s/condition: service_healthy/condition: service_started/'
mutate "compose: healthcheck removed" $c/compose.yaml '/^  registry:/,/^  dataset:/{/healthcheck:/,/test:/d}'
mutate "compose: inference 1 replica" $c/compose.yaml 's/replicas: 2/replicas: 1/'
mutate "compose: peer not a service" $c/compose.yaml 's/--clients.inference-address=inference:9090/--clients.inference-address=inferencer:9090/'
mutate "compose: DSN dropped from registry" $c/compose.yaml '/^  registry:/,/^  dataset:/s/<<: \[\*db-env, \*s3-env, \*service-env\]/<<: [*s3-env, *service-env]/'
mutate "compose: bad duration in shoal.yaml" $c/shoal.yaml 's/shutdown-timeout: 20s/shutdown-timeout: 20/'
mutate "compose: config not mounted" $c/compose.yaml 's|target: /etc/shoal/shoal.yaml|target: /etc/shoal/config.yaml|'
mutate "Dockerfile: entrypoint" ../Dockerfile 's|ENTRYPOINT \["/shoal"\]|ENTRYPOINT ["/bin/shoal"]|'
mutate "Dockerfile: static base" ../Dockerfile 's|distroless/cc-debian12:nonroot|distroless/static-debian12:nonroot|'
mutate "Dockerfile: no health probe" ../Dockerfile '/COPY --from=build \/out\/grpc-health-probe/d'
mutate "Dockerfile: no console build" ../Dockerfile '/^RUN npm run build$/d'
mutate "Dockerfile: console not embedded" ../Dockerfile '/COPY --from=ui/d'
mutate "compose: unpinned S3 image" $c/compose.yaml 's|chrislusf/seaweedfs:4.53|chrislusf/seaweedfs:latest|'
mutate "k8s: gateway without a Service" $k/gateway.yaml '/^kind: Service/,$s/component: gateway/component: gateways/'
mutate "k8s: typo in kustomization" $k/kustomization.yaml 's/^configMapGenerator:/configMapGenerators:/'
mutate "k8s: probe on named port as grpc port" $k/registry.yaml 's/              port: 9090/              port: grpc/'
mutate "k8s tls: a Service name missing from the certificate" $k/tls/certificate.example.yaml '/    - trainer.shoal.svc$/d'
mutate "k8s tls: client CA key misnamed" $k/tls/kustomization.yaml 's|/etc/shoal/tls/ca.crt}|/etc/shoal/tls/ca.pem}|'
mutate "k8s tls: grpc startup probe kept" $k/tls/kustomization.yaml '/# The kubelet/,$d'
mutate "k8s: a peer's Service not headless" $k/registry.yaml '/clusterIP: None/d'
mutate "k8s: two env variables of one name (API schema)" $k/auth.yaml 's/- name: SHOAL_AUTH_BOOTSTRAP_TOKEN/- name: SHOAL_DB_DSN/'
mutate "k8s: a number where the API wants a string (API schema)" $k/dataset.yaml '0,/app.kubernetes.io\/component: dataset/s/app.kubernetes.io\/component: dataset/app.kubernetes.io\/component: 7/'
mutate "netpol: no default deny" $k/networkpolicy.yaml 's/  podSelector: {}/  podSelector: {matchLabels: {none: none}}/'
mutate "netpol: trainer cannot reach registry" $k/networkpolicy.yaml '/^  name: trainer$/,/^---/s/component: registry/component: registy/'
mutate "netpol: trainer reaches every pod" $k/networkpolicy.yaml '/^  name: trainer$/,/^---/{/component: registry/d}'
mutate "netpol: inference open to everyone" $k/networkpolicy.yaml '/^  name: inference$/,/^---/s/^    - from:/    - ports: [{port: 9090}]\n    - from:/'
mutate "netpol: inference's S3 port closed" $k/networkpolicy.yaml '/^  name: inference$/,$s/port: 443}/port: 8443}/'
mutate "netpol: DNS over UDP blocked" $k/networkpolicy.yaml 's/{protocol: UDP, port: 53}/{protocol: UDP, port: 5353}/'
mutate "netpol: gateway's REST port closed" $k/networkpolicy.yaml '/^  name: gateway$/,/^---/{/port: 8080}/d}'
mutate "netpol: egress anywhere" $k/networkpolicy.yaml '/^  name: dataset$/,$s/port: 5432}/port: 5432}\n    - {}/'
mutate "monitoring: endpoint on the grpc port" $k/monitoring/servicemonitor.yaml 's/- port: http/- port: grpc/'
mutate "monitoring: typo'd ServiceMonitor field" $k/monitoring/servicemonitor.yaml 's/scrapeTimeout:/scrapeTimout:/'
mutate "monitoring: Prometheus blocked" $k/monitoring/networkpolicy.yaml 's/port: 8080}/port: 8081}/'
mutate "monitoring: ServiceMonitor in the base" - 'CMD:cp ../kubernetes/monitoring/servicemonitor.yaml ../kubernetes/ && sed -i "s/  - networkpolicy.yaml/  - networkpolicy.yaml\n  - servicemonitor.yaml/" ../kubernetes/kustomization.yaml'
g=../grafana/shoal.json
mutate "dashboard: not JSON" $g '0,/"panels": \[/s/"panels": \[/"panels": [[/'
mutate "dashboard: a query that is not PromQL" $g '0,/rate(shoal_http_requests_total\[/s/rate(shoal_http_requests_total\[/rate(shoal_http_requests_total[[/'
mutate "dashboard: an unknown Grafana variable" $g '0,/\$__rate_interval/s/\$__rate_interval/$rate_interval/'
mutate "dashboard: a data source by uid, not the variable" $g '0,/"uid": "\${datasource}"/s/"uid": "\${datasource}"/"uid": "P1809F7CD0C75ACF3"/'
mutate "dashboard: no data source variable" $g 's/"name": "datasource"/"name": "ds"/'
live=1
mutate "dashboard: a metric nobody exports" $g 's/shoal_trainer_images_total/shoal_trainer_image_total/'
mutate "dashboard: a histogram queried without _bucket" $g '0,/shoal_inference_queue_wait_seconds_bucket/s/shoal_inference_queue_wait_seconds_bucket/shoal_inference_queue_wait_seconds/'
live=

echo "$failures break(s) not caught"
((failures == 0))
