// Package deploy holds no code: the directory holds the container image, the
// Kubernetes/OpenShift manifests, the alerting rules, the Grafana dashboard
// and the IAM policies, and this package's tests check them as an operator
// would apply them (see deploy_test.go). Its test-only dependencies
// (k8s.io/..., prometheus/prometheus, the Prometheus Operator's types) never
// reach the packit-launch binary: TestBinaryLinksNoDeployDependencies checks.
package deploy
