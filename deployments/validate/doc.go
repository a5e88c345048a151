// Package validate checks Shoal's deployment manifests without a container
// engine or a cluster: deployments/Dockerfile, the compose project in
// deployments/compose and the kustomize base in deployments/kubernetes.
//
// The manifests are decoded the way their tools decode them (compose-go with
// the Compose schema; kustomize's krusty, then each object strictly into its
// k8s.io/api type), checked against the invariants the scaled mode needs, and
// every Shoal process they describe is handed to the real shoal binary with
// its effective configuration (the shared YAML file, its arguments and its
// environment) and --check-config, so a manifest that Shoal would refuse to
// start on fails here.
//
// The Grafana dashboard in deployments/grafana is decoded as Grafana's JSON
// model, its queries are parsed with Prometheus's own PromQL parser, and the
// metric names they use are compared with those a real `shoal serve`
// exports once it has trained a model and answered predictions.
//
// The tests live in their own module so that the main module neither builds
// them nor depends on the Kubernetes, Compose and Prometheus libraries. Run them through
// scripts/check-deployments.sh, or here with SHOAL_BIN naming a shoal binary
// (without it, TestMain builds one from the repository).
package validate
