package deploy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/intstr"
	kyaml "k8s.io/apimachinery/pkg/util/yaml"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"

	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/web"
)

// The manifests, as README's Deployment section applies them.
const (
	botManifest     = "kubernetes/packit-launch.yaml"
	redisManifest   = "kubernetes/redis.yaml"
	ingressManifest = "ingress/ingress.yaml"
	routeManifest   = "ingress/route.yaml"
	rulesManifest   = "monitoring/prometheusrule.yaml"
	monitorManifest = "monitoring/servicemonitor.yaml"
	dashboardFile   = "grafana/packit-launch.json"
)

// route is OpenShift's route.openshift.io/v1 Route, as much of it as
// github.com/openshift/api/route/v1 has (that module is not worth its weight
// here); decoded strictly, so a field it lacks fails the test.
type route struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Host              string        `json:"host,omitempty"`
		Subdomain         string        `json:"subdomain,omitempty"`
		Path              string        `json:"path,omitempty"`
		To                routeTarget   `json:"to"`
		AlternateBackends []routeTarget `json:"alternateBackends,omitempty"`
		Port              *struct {
			TargetPort intstr.IntOrString `json:"targetPort"`
		} `json:"port,omitempty"`
		TLS *struct {
			Termination                   string `json:"termination"`
			Certificate                   string `json:"certificate,omitempty"`
			Key                           string `json:"key,omitempty"`
			CACertificate                 string `json:"caCertificate,omitempty"`
			DestinationCACertificate      string `json:"destinationCACertificate,omitempty"`
			InsecureEdgeTerminationPolicy string `json:"insecureEdgeTerminationPolicy,omitempty"`
			ExternalCertificate           *struct {
				Name string `json:"name"`
			} `json:"externalCertificate,omitempty"`
		} `json:"tls,omitempty"`
		WildcardPolicy string          `json:"wildcardPolicy,omitempty"`
		HTTPHeaders    json.RawMessage `json:"httpHeaders,omitempty"`
	} `json:"spec"`
}

type routeTarget struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Weight *int32 `json:"weight,omitempty"`
}

// decodeAll decodes every document of a manifest strictly (unknown and
// duplicate fields are errors) into the k8s.io/api or Prometheus Operator
// type its apiVersion and kind name, or into route.
func decodeAll(t *testing.T, file string) []runtime.Object {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, networkingv1.AddToScheme, monitoringv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	ser := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme, kjson.SerializerOptions{Yaml: true, Strict: true})
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var objs []runtime.Object
	r := kyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", file, i, err)
		}
		j, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			t.Fatalf("%s: document %d: %v", file, i, err)
		}
		if string(bytes.TrimSpace(j)) == "null" {
			continue // comments only
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("%s: document %d: %v", file, i, err)
		}
		if tm.APIVersion == "route.openshift.io/v1" && tm.Kind == "Route" {
			var rt route
			if err := yaml.UnmarshalStrict(doc, &rt); err != nil {
				t.Fatalf("%s: document %d (Route): %v", file, i, err)
			}
			objs = append(objs, &rt)
			continue
		}
		obj, _, err := ser.Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("%s: document %d (%s %s): %v", file, i, tm.APIVersion, tm.Kind, err)
		}
		objs = append(objs, obj)
	}
	if len(objs) == 0 {
		t.Fatalf("%s: no object", file)
	}
	return objs
}

// cluster is every manifest of deploy/, decoded.
type cluster struct {
	secret         *corev1.Secret
	configMap      *corev1.ConfigMap
	bot            *appsv1.Deployment
	botService     *corev1.Service
	redis          *appsv1.StatefulSet
	redisService   *corev1.Service
	redisPolicy    *networkingv1.NetworkPolicy
	ingress        *networkingv1.Ingress
	routes         []*route // one per path: a Route has only one
	rules          *monitoringv1.PrometheusRule
	serviceMonitor *monitoringv1.ServiceMonitor
}

func load(t *testing.T) cluster {
	t.Helper()
	var c cluster
	set := func(file string, dst any, obj runtime.Object) {
		t.Helper()
		switch d := dst.(type) {
		case **corev1.Secret:
			*d = obj.(*corev1.Secret)
		case **corev1.ConfigMap:
			*d = obj.(*corev1.ConfigMap)
		case **appsv1.Deployment:
			*d = obj.(*appsv1.Deployment)
		case **corev1.Service:
			if *d != nil {
				t.Fatalf("%s: a second Service %s", file, obj.(*corev1.Service).Name)
			}
			*d = obj.(*corev1.Service)
		case **appsv1.StatefulSet:
			*d = obj.(*appsv1.StatefulSet)
		case **networkingv1.NetworkPolicy:
			*d = obj.(*networkingv1.NetworkPolicy)
		case **networkingv1.Ingress:
			*d = obj.(*networkingv1.Ingress)
		case *[]*route:
			*d = append(*d, obj.(*route))
		case **monitoringv1.PrometheusRule:
			*d = obj.(*monitoringv1.PrometheusRule)
		case **monitoringv1.ServiceMonitor:
			*d = obj.(*monitoringv1.ServiceMonitor)
		}
	}
	// Which objects each file must hold, and nothing else.
	want := map[string]map[string]any{
		botManifest:     {"Secret": &c.secret, "ConfigMap": &c.configMap, "Deployment": &c.bot, "Service": &c.botService},
		redisManifest:   {"StatefulSet": &c.redis, "Service": &c.redisService, "NetworkPolicy": &c.redisPolicy},
		ingressManifest: {"Ingress": &c.ingress},
		routeManifest:   {"Route": &c.routes},
		rulesManifest:   {"PrometheusRule": &c.rules},
		monitorManifest: {"ServiceMonitor": &c.serviceMonitor},
	}
	for file, kinds := range want {
		seen := map[string]bool{}
		for _, obj := range decodeAll(t, file) {
			kind := kindOf(obj)
			dst, ok := kinds[kind]
			_, many := dst.(*[]*route)
			if !ok || seen[kind] && !many {
				t.Fatalf("%s: unexpected %s (the test knows this file as %v)", file, kind, mapsKeys(kinds))
			}
			seen[kind] = true
			set(file, dst, obj)
		}
		for kind := range kinds {
			if !seen[kind] {
				t.Fatalf("%s: no %s", file, kind)
			}
		}
	}
	// Every manifest of deploy/ is one of those.
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ext := filepath.Ext(path); (ext == ".yaml" || ext == ".yml") && want[filepath.ToSlash(path)] == nil {
			t.Errorf("%s: a manifest the test does not check: add it to load", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	return c
}

func kindOf(obj runtime.Object) string {
	switch obj.(type) {
	case *corev1.Secret:
		return "Secret"
	case *corev1.ConfigMap:
		return "ConfigMap"
	case *corev1.Service:
		return "Service"
	case *appsv1.Deployment:
		return "Deployment"
	case *appsv1.StatefulSet:
		return "StatefulSet"
	case *networkingv1.NetworkPolicy:
		return "NetworkPolicy"
	case *networkingv1.Ingress:
		return "Ingress"
	case *route:
		return "Route"
	case *monitoringv1.PrometheusRule:
		return "PrometheusRule"
	case *monitoringv1.ServiceMonitor:
		return "ServiceMonitor"
	}
	return obj.GetObjectKind().GroupVersionKind().Kind + " (unknown to the test)"
}

func mapsKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// DeepCopyObject makes route a runtime.Object (never called).
func (r *route) DeepCopyObject() runtime.Object { c := *r; return &c }

// selects says whether a selector's labels are all among labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false // an empty selector selects everything: never what is meant here
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestManifestsDecodeStrictly(t *testing.T) {
	c := load(t)
	objs := []metav1.Object{c.secret, c.configMap, c.bot, c.botService, c.redis, c.redisService, c.redisPolicy, c.ingress, c.rules, c.serviceMonitor}
	for _, r := range c.routes {
		objs = append(objs, r)
	}
	for _, m := range objs {
		if m.GetNamespace() != "" {
			t.Fatalf("%s names namespace %q: the manifests go into the namespace kubectl is given", m.GetName(), m.GetNamespace())
		}
	}
}

// TestPodsPassRestricted evaluates both pods with Kubernetes' own Pod
// Security Admission checks at the `restricted` level, latest version, and
// checks what that level leaves out but the issue asks for: a read-only root
// filesystem with the writable paths each needs, and limits.
func TestPodsPassRestricted(t *testing.T) {
	c := load(t)
	ev, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	restricted := psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}
	pods := map[string]*corev1.PodTemplateSpec{"Deployment " + c.bot.Name: &c.bot.Spec.Template, "StatefulSet " + c.redis.Name: &c.redis.Spec.Template}
	for name, pod := range pods {
		res := policy.AggregateCheckResults(ev.EvaluatePod(restricted, &pod.ObjectMeta, &pod.Spec))
		if !res.Allowed {
			t.Fatalf("%s: the restricted Pod Security level refuses its pods: %s", name, res.ForbiddenDetail())
		}
		spec := pod.Spec
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			t.Fatalf("%s: automountServiceAccountToken must be false (neither talks to the Kubernetes API)", name)
		}
		if len(spec.InitContainers) > 0 {
			t.Fatalf("%s: init containers: check them here too", name)
		}
		for _, ctr := range spec.Containers {
			sc := ctr.SecurityContext
			if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Fatalf("%s: container %s: readOnlyRootFilesystem must be true", name, ctr.Name)
			}
			if ctr.Resources.Requests.Memory().IsZero() || ctr.Resources.Limits.Memory().IsZero() || ctr.Resources.Requests.Cpu().IsZero() {
				t.Fatalf("%s: container %s: needs cpu and memory requests and a memory limit", name, ctr.Name)
			}
			if strings.HasSuffix(ctr.Image, ":latest") && !strings.HasPrefix(ctr.Image, "quay.io/packit/packit-launch:") {
				t.Fatalf("%s: container %s: pin the image's tag, not %s", name, ctr.Name, ctr.Image)
			}
		}
	}
	// The evaluator does refuse what it should (so that a pass above means something).
	bad := c.bot.Spec.Template.DeepCopy()
	bad.Spec.SecurityContext = nil
	bad.Spec.Containers[0].SecurityContext = nil
	if res := policy.AggregateCheckResults(ev.EvaluatePod(restricted, &bad.ObjectMeta, &bad.Spec)); res.Allowed {
		t.Fatal("the Pod Security evaluator allows a pod without a securityContext: the check above proves nothing")
	}

	// The bot: no fixed UID or fsGroup, so that OpenShift's restricted-v2 SCC
	// can assign those of the namespace's range; /tmp writable, from an emptyDir.
	bot := c.bot.Spec.Template.Spec
	if sc := bot.SecurityContext; sc.RunAsUser != nil || sc.RunAsGroup != nil || sc.FSGroup != nil {
		t.Fatal("the bot's pod fixes runAsUser, runAsGroup or fsGroup: OpenShift's restricted-v2 SCC refuses one outside the namespace's range; the image's USER 1001 does on Kubernetes")
	}
	for _, ctr := range bot.Containers {
		if ctr.SecurityContext.RunAsUser != nil || ctr.SecurityContext.RunAsGroup != nil {
			t.Fatalf("container %s fixes runAsUser or runAsGroup: see above", ctr.Name)
		}
	}
	mountedFrom(t, bot, "packit-launch", "/tmp", func(v corev1.VolumeSource) bool { return v.EmptyDir != nil })
	// Redis: its data directory is the volume claim.
	redis := c.redis.Spec.Template.Spec
	mountedFrom(t, redis, "redis", "/data", func(corev1.VolumeSource) bool { return false })
	if len(c.redis.Spec.VolumeClaimTemplates) != 1 || c.redis.Spec.VolumeClaimTemplates[0].Name != "data" {
		t.Fatal("Redis: /data must be the claim template data")
	}
}

// mountedFrom fails unless container ctr mounts path from a volume of the
// pod that ok accepts, or from a volume claim template (when no pod volume
// has that name).
func mountedFrom(t *testing.T, pod corev1.PodSpec, ctr, path string, ok func(corev1.VolumeSource) bool) {
	t.Helper()
	for _, c := range pod.Containers {
		if c.Name != ctr {
			continue
		}
		for _, m := range c.VolumeMounts {
			if m.MountPath != path {
				continue
			}
			if m.ReadOnly {
				t.Fatalf("container %s: %s is mounted read-only", ctr, path)
			}
			for _, v := range pod.Volumes {
				if v.Name == m.Name {
					if !ok(v.VolumeSource) {
						t.Fatalf("container %s: %s comes from volume %s of the wrong kind", ctr, path, v.Name)
					}
					return
				}
			}
			if path == "/data" {
				return // the StatefulSet's claim template
			}
			t.Fatalf("container %s: %s mounts volume %s, which the pod lacks", ctr, path, m.Name)
		}
		t.Fatalf("container %s: nothing writable at %s", ctr, path)
	}
	t.Fatalf("no container %s", ctr)
}

func envNamed(t *testing.T, ctr corev1.Container, name string) (int, corev1.EnvVar) {
	t.Helper()
	for i, e := range ctr.Env {
		if e.Name == name {
			return i, e
		}
	}
	t.Fatalf("container %s: no env %s", ctr.Name, name)
	return 0, corev1.EnvVar{}
}

// TestRedisGuarded: a password from the Secret that the bot's REDIS_URL and
// Redis's --requirepass both take from one key, persistence, a headless
// governing Service, and a NetworkPolicy that admits only the bot's pods.
func TestRedisGuarded(t *testing.T) {
	c := load(t)
	redisPod := c.redis.Spec.Template
	redisCtr := redisPod.Spec.Containers[0]
	if len(redisPod.Spec.Containers) != 1 || redisCtr.Name != "redis" {
		t.Fatal("the Redis pod must have its one container, redis")
	}
	args := strings.Join(redisCtr.Args, " ")
	for _, want := range []string{"--appendonly yes", "--requirepass $(REDIS_PASSWORD)", "--maxmemory-policy noeviction"} {
		if !strings.Contains(args, want) {
			t.Fatalf("Redis args %q lack %q", args, want)
		}
	}
	_, pw := envNamed(t, redisCtr, "REDIS_PASSWORD")
	key := pw.ValueFrom
	if key == nil || key.SecretKeyRef == nil || key.SecretKeyRef.Name != c.secret.Name || key.SecretKeyRef.Key != "REDIS_PASSWORD" {
		t.Fatalf("Redis's REDIS_PASSWORD must come from Secret %s, key REDIS_PASSWORD: %+v", c.secret.Name, key)
	}
	example, ok := c.secret.StringData["REDIS_PASSWORD"]
	if !ok {
		t.Fatalf("Secret %s has no REDIS_PASSWORD", c.secret.Name)
	}
	if _, ok := c.secret.StringData["REDIS_URL"]; ok {
		t.Fatal("the Secret sets REDIS_URL while the Deployment builds it from REDIS_PASSWORD: one would hide the other")
	}
	if url.PathEscape(example) != example || strings.ContainsAny(example, ":@/?#") {
		t.Fatalf("the example REDIS_PASSWORD %q would need escaping in REDIS_URL", example)
	}

	// The bot builds REDIS_URL from the same key, after defining it.
	bot := c.bot.Spec.Template.Spec.Containers[0]
	if len(bot.EnvFrom) != 1 || bot.EnvFrom[0].SecretRef == nil || bot.EnvFrom[0].SecretRef.Name != c.secret.Name {
		t.Fatalf("the bot must take its settings from Secret %s", c.secret.Name)
	}
	ip, bpw := envNamed(t, bot, "REDIS_PASSWORD")
	if bpw.ValueFrom == nil || bpw.ValueFrom.SecretKeyRef == nil || *bpw.ValueFrom.SecretKeyRef != *key.SecretKeyRef {
		t.Fatalf("the bot's REDIS_PASSWORD must come from the key Redis reads: %+v", bpw.ValueFrom)
	}
	iu, ru := envNamed(t, bot, "REDIS_URL")
	if iu < ip {
		t.Fatal("REDIS_URL refers to REDIS_PASSWORD, which must be defined before it")
	}
	u, err := url.Parse(strings.ReplaceAll(ru.Value, "$(REDIS_PASSWORD)", example))
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := u.User.Password(); u.Scheme != "redis" || p != example || u.User.Username() != "" {
		t.Fatalf("REDIS_URL %q: want redis://:$(REDIS_PASSWORD)@host:port/db", ru.Value)
	}
	svc := c.redisService
	if u.Hostname() != svc.Name || u.Port() != "6379" || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 6379 {
		t.Fatalf("REDIS_URL %q does not name Service %s's port 6379", ru.Value, svc.Name)
	}

	// The headless Service that governs the StatefulSet, and selects its pod.
	if c.redis.Spec.ServiceName != svc.Name || svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Fatalf("the StatefulSet's serviceName %q must name a headless Service (clusterIP: None)", c.redis.Spec.ServiceName)
	}
	if !selects(svc.Spec.Selector, redisPod.Labels) || !selects(c.redis.Spec.Selector.MatchLabels, redisPod.Labels) {
		t.Fatal("Redis's Service or StatefulSet does not select its pod")
	}
	if tp := svc.Spec.Ports[0].TargetPort; !containerPort(redisCtr, tp, 6379) {
		t.Fatalf("Redis's Service targets %s, not the container's 6379", tp.String())
	}

	// The NetworkPolicy: Redis's pod, ingress from the bot's pods only, 6379 only.
	np := c.redisPolicy.Spec
	if !selects(np.PodSelector.MatchLabels, redisPod.Labels) || len(np.PodSelector.MatchExpressions) > 0 {
		t.Fatal("the NetworkPolicy does not select Redis's pod")
	}
	if !slices.Equal(np.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) || len(np.Ingress) != 1 {
		t.Fatal("the NetworkPolicy must be one Ingress rule")
	}
	rule := np.Ingress[0]
	if len(rule.From) != 1 || rule.From[0].PodSelector == nil || rule.From[0].NamespaceSelector != nil || rule.From[0].IPBlock != nil {
		t.Fatal("the NetworkPolicy must admit pods of this namespace by label, and nothing else")
	}
	from := rule.From[0].PodSelector
	if len(from.MatchExpressions) > 0 || !selects(from.MatchLabels, c.bot.Spec.Template.Labels) || selects(from.MatchLabels, redisPod.Labels) {
		t.Fatalf("the NetworkPolicy admits %v, which must select the bot's pods (and not Redis)", from.MatchLabels)
	}
	if selects(c.botService.Spec.Selector, from.MatchLabels) {
		t.Fatal("the label the NetworkPolicy admits must not be the one the bot's Service selects (worker pods need Redis but not webhooks)")
	}
	if len(rule.Ports) != 1 || rule.Ports[0].Port == nil || rule.Ports[0].Port.IntValue() != 6379 || rule.Ports[0].Protocol == nil || *rule.Ports[0].Protocol != corev1.ProtocolTCP {
		t.Fatal("the NetworkPolicy must admit TCP 6379 only")
	}
}

func containerPort(ctr corev1.Container, target intstr.IntOrString, want int32) bool {
	for _, p := range ctr.Ports {
		if p.ContainerPort == want && (target.Type == intstr.Int && target.IntVal == want || target.Type == intstr.String && target.StrVal == p.Name) {
			return true
		}
	}
	return false
}

// TestBotWiring: the Deployment, its Service, the ConfigMap, the Secret and
// the ServiceMonitor name each other correctly.
func TestBotWiring(t *testing.T) {
	c := load(t)
	pod := c.bot.Spec.Template
	if !selects(c.bot.Spec.Selector.MatchLabels, pod.Labels) || !selects(c.botService.Spec.Selector, pod.Labels) {
		t.Fatal("the Deployment or the Service does not select the bot's pods")
	}
	ctr := pod.Spec.Containers[0]
	_, listen := envNamed(t, ctr, "LISTEN_ADDR")
	if listen.Value != "0.0.0.0:3000" {
		t.Fatalf("LISTEN_ADDR %q", listen.Value)
	}
	if len(c.botService.Spec.Ports) != 1 || !containerPort(ctr, c.botService.Spec.Ports[0].TargetPort, 3000) {
		t.Fatal("the bot's Service must target the container's port 3000")
	}
	for _, p := range []*corev1.Probe{ctr.LivenessProbe, ctr.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Fatal("the bot needs HTTP liveness and readiness probes")
		}
	}
	if ctr.LivenessProbe.HTTPGet.Path != "/healthz" || ctr.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Fatal("probes: liveness /healthz, readiness /readyz")
	}
	// --config names the ConfigMap's key where it is mounted.
	i := slices.Index(ctr.Args, "--config")
	if i < 0 || i+1 >= len(ctr.Args) {
		t.Fatalf("args %q: no --config", ctr.Args)
	}
	cfg := ctr.Args[i+1]
	var mounted bool
	for _, m := range ctr.VolumeMounts {
		for _, v := range pod.Spec.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil && v.ConfigMap.Name == c.configMap.Name && filepath.Dir(cfg) == m.MountPath {
				_, mounted = c.configMap.Data[filepath.Base(cfg)]
			}
		}
	}
	if !mounted {
		t.Fatalf("--config %s is not a key of ConfigMap %s mounted there", cfg, c.configMap.Name)
	}
	if strings.Contains(c.configMap.Data[filepath.Base(cfg)], "webhook_path") {
		t.Fatal("the policy sets webhook_path: the Ingress and Route expose the default one")
	}
	// The ServiceMonitor scrapes the bot's Service's port.
	sm := c.serviceMonitor.Spec
	if !selects(sm.Selector.MatchLabels, c.botService.Labels) || len(sm.Endpoints) != 1 || sm.Endpoints[0].Port != c.botService.Spec.Ports[0].Name || sm.Endpoints[0].Path != "/metrics" {
		t.Fatal("the ServiceMonitor must scrape /metrics on the bot's Service's named port")
	}
	if selects(sm.Selector.MatchLabels, c.redisService.Labels) {
		t.Fatal("the ServiceMonitor selects Redis's Service")
	}
}

// The paths the Ingress exposes, and how each matches: the webhook and the
// web view's pages. Any other path fails TestWayIn.
var ingressPaths = map[string]networkingv1.PathType{
	config.DefaultWebhookPath: networkingv1.PathTypeExact,
	"/launches":               networkingv1.PathTypePrefix, // and /launches/{id}, with its forms
	"/login":                  networkingv1.PathTypeExact,
	web.LoginCallbackPath:     networkingv1.PathTypeExact,
	"/logout":                 networkingv1.PathTypeExact,
	"/fleet":                  networkingv1.PathTypeExact,
	"/web.css":                networkingv1.PathTypeExact,
}

// The paths of the Routes, each a prefix (/login covers the callback).
var routePaths = []string{config.DefaultWebhookPath, "/launches", "/login", "/logout", "/fleet", "/web.css"}

// ingressMatches says whether the Ingress path p takes path, as
// Kubernetes matches: Exact whole, Prefix by whole path elements.
func ingressMatches(p networkingv1.HTTPIngressPath, path string) bool {
	switch *p.PathType {
	case networkingv1.PathTypeExact:
		return path == p.Path
	case networkingv1.PathTypePrefix:
		prefix := strings.TrimSuffix(p.Path, "/")
		return path == prefix || strings.HasPrefix(path, prefix+"/")
	}
	return true // ImplementationSpecific may take anything
}

// routeMatches says whether a Route's path takes path. Taken as a plain
// string prefix, the widest reading, so that "not exposed" means it.
func routeMatches(r *route, path string) bool {
	return strings.HasPrefix(path, r.Spec.Path)
}

// webPaths are example paths of every page the web view registers (a path
// per value its variables may take), from web.Register itself: a page added
// there fails TestWayIn until the manifests expose it (or it is kept out).
func webPaths(t *testing.T) []string {
	t.Helper()
	cfg := &config.Server{Web: config.Web{PublicURL: "https://packit-launch.example.com", SessionKey: config.Secret(strings.Repeat("k", config.MinSessionKey))},
		GitHub: config.GitHub{ClientID: "Iv1.x", ClientSecret: "s"}}
	pages, err := web.New(cfg, nil, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	r := mux.NewRouter()
	pages.Register(r)
	samples := map[string][]string{"id": {"k3x9q2"}, "action": {"extend", "terminate"}}
	var paths []string
	err = r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		names, err := route.GetVarNames()
		if err != nil {
			return err
		}
		combos := [][]string{nil} // name, value pairs
		for _, name := range names {
			values, ok := samples[name]
			if !ok {
				tpl, _ := route.GetPathTemplate()
				t.Fatalf("web page %s: no sample value for {%s}: add one to webPaths", tpl, name)
			}
			var next [][]string
			for _, c := range combos {
				for _, v := range values {
					next = append(next, append(slices.Clone(c), name, v))
				}
			}
			combos = next
		}
		for _, c := range combos {
			u, err := route.URLPath(c...)
			if err != nil {
				return err
			}
			paths = append(paths, u.Path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("the web view registers no page")
	}
	return paths
}

// TestWayIn: the Ingress and the Routes expose the webhook and the web
// view's pages, and nothing else, over TLS, to the bot's Service.
func TestWayIn(t *testing.T) {
	c := load(t)
	svc := c.botService
	port := svc.Spec.Ports[0]
	ctr := c.bot.Spec.Template.Spec.Containers[0]

	// Served, and to be reached from outside.
	exposed := []string{config.DefaultWebhookPath}
	// Served, and kept in: the probes, the metrics, and / (with SETUP_PAGE=on
	// it is the setup page's form; its posts go to /setup/).
	hidden := []string{ctr.LivenessProbe.HTTPGet.Path, ctr.ReadinessProbe.HTTPGet.Path, c.serviceMonitor.Spec.Endpoints[0].Path, "/", "/setup/app", "/setup/done"}
	for _, want := range []string{"/healthz", "/readyz", "/metrics"} {
		if !slices.Contains(hidden, want) {
			t.Fatalf("%s is not among the paths kept in %v", want, hidden)
		}
	}
	for _, p := range webPaths(t) {
		if !slices.Contains(hidden, p) {
			exposed = append(exposed, p)
		}
	}

	// The Ingress: one host, covered by its TLS, each path of ingressPaths
	// (and no other) to the bot's Service.
	in := c.ingress.Spec
	if in.DefaultBackend != nil {
		t.Fatal("the Ingress must not have a default backend (everything else stays out)")
	}
	if len(in.Rules) != 1 || in.Rules[0].HTTP == nil || in.Rules[0].Host == "" {
		t.Fatal("the Ingress must have one rule, for its host")
	}
	if len(in.TLS) != 1 || !slices.Equal(in.TLS[0].Hosts, []string{in.Rules[0].Host}) || in.TLS[0].SecretName == "" {
		t.Fatal("the Ingress's host must be covered by its TLS section")
	}
	paths := in.Rules[0].HTTP.Paths
	seen := map[string]bool{}
	for _, p := range paths {
		want, ok := ingressPaths[p.Path]
		if !ok || seen[p.Path] {
			t.Fatalf("the Ingress exposes %q, which is not (or no longer) among %v", p.Path, mapsKeys(ingressPaths))
		}
		seen[p.Path] = true
		if p.PathType == nil || *p.PathType != want {
			t.Fatalf("the Ingress's %s must be pathType %s", p.Path, want)
		}
		if b := p.Backend.Service; b == nil || p.Backend.Resource != nil || b.Name != svc.Name || (b.Port.Name != port.Name && b.Port.Number != port.Port) {
			t.Fatalf("the Ingress's %s must go to Service %s, port %s", p.Path, svc.Name, port.Name)
		}
		if !slices.ContainsFunc(exposed, func(e string) bool { return ingressMatches(p, e) }) {
			t.Fatalf("the Ingress's %s takes nothing the bot serves", p.Path)
		}
	}
	for _, want := range mapsKeys(ingressPaths) {
		if !seen[want] {
			t.Fatalf("the Ingress lacks %s", want)
		}
	}
	for _, e := range exposed {
		if !slices.ContainsFunc(paths, func(p networkingv1.HTTPIngressPath) bool { return ingressMatches(p, e) }) {
			t.Fatalf("the Ingress does not expose %s", e)
		}
	}
	for _, h := range hidden {
		if i := slices.IndexFunc(paths, func(p networkingv1.HTTPIngressPath) bool { return ingressMatches(p, h) }); i >= 0 {
			t.Fatalf("the Ingress's %s exposes %s", paths[i].Path, h)
		}
	}

	// The Routes: one per path of routePaths (and no other), one host, edge
	// TLS refusing plain HTTP, to the bot's Service's port.
	names, rpaths := map[string]bool{}, map[string]bool{}
	host := c.routes[0].Spec.Host
	for _, rt := range c.routes {
		r := rt.Spec
		if rt.APIVersion != "route.openshift.io/v1" || names[rt.Name] || rt.Name == "" {
			t.Fatalf("Route %q: route.openshift.io/v1, with a name of its own", rt.Name)
		}
		names[rt.Name] = true
		if !slices.Contains(routePaths, r.Path) || rpaths[r.Path] {
			t.Fatalf("Route %s exposes %q, which is not (or no longer) among %v", rt.Name, r.Path, routePaths)
		}
		rpaths[r.Path] = true
		if host == "" || r.Host != host || r.Subdomain != "" || (r.WildcardPolicy != "" && r.WildcardPolicy != "None") {
			t.Fatalf("Route %s: host %q, Route %s's %q: every Route must name the same host (left out, each gets its own)", rt.Name, r.Host, c.routes[0].Name, host)
		}
		if r.To.Kind != "Service" || r.To.Name != svc.Name || len(r.AlternateBackends) > 0 {
			t.Fatalf("Route %s must go to Service %s", rt.Name, svc.Name)
		}
		if r.Port == nil || (r.Port.TargetPort.String() != port.Name && r.Port.TargetPort.String() != port.TargetPort.String()) {
			t.Fatalf("Route %s's port must be the Service's %s port", rt.Name, port.Name)
		}
		if r.TLS == nil || r.TLS.Termination != "edge" || r.TLS.InsecureEdgeTerminationPolicy != "None" {
			t.Fatalf("Route %s must end TLS at the router (edge) and refuse plain HTTP (insecureEdgeTerminationPolicy: None)", rt.Name)
		}
		if !slices.ContainsFunc(exposed, func(e string) bool { return routeMatches(rt, e) }) {
			t.Fatalf("Route %s (%s) takes nothing the bot serves", rt.Name, r.Path)
		}
	}
	for _, want := range routePaths {
		if !rpaths[want] {
			t.Fatalf("no Route for %s", want)
		}
	}
	for _, e := range exposed {
		if !slices.ContainsFunc(c.routes, func(r *route) bool { return routeMatches(r, e) }) {
			t.Fatalf("no Route exposes %s", e)
		}
	}
	for _, h := range hidden {
		if i := slices.IndexFunc(c.routes, func(r *route) bool { return routeMatches(r, h) }); i >= 0 {
			t.Fatalf("Route %s (%s) exposes %s", c.routes[i].Name, c.routes[i].Spec.Path, h)
		}
	}
}

// The matchers above agree with how Kubernetes and the OpenShift router
// match, on the cases TestWayIn relies on.
func TestWayInMatchers(t *testing.T) {
	prefix, exact := networkingv1.PathTypePrefix, networkingv1.PathTypeExact
	for _, c := range []struct {
		p    networkingv1.HTTPIngressPath
		path string
		want bool
	}{
		{networkingv1.HTTPIngressPath{Path: "/launches", PathType: &prefix}, "/launches", true},
		{networkingv1.HTTPIngressPath{Path: "/launches", PathType: &prefix}, "/launches/k3x9q2/extend", true},
		{networkingv1.HTTPIngressPath{Path: "/launches", PathType: &prefix}, "/launchesx", false},
		{networkingv1.HTTPIngressPath{Path: "/", PathType: &prefix}, "/metrics", true},
		{networkingv1.HTTPIngressPath{Path: "/login", PathType: &exact}, "/login/callback", false},
		{networkingv1.HTTPIngressPath{Path: "/login", PathType: &exact}, "/login", true},
	} {
		if got := ingressMatches(c.p, c.path); got != c.want {
			t.Errorf("Ingress %s %s takes %s: %v, want %v", *c.p.PathType, c.p.Path, c.path, got, c.want)
		}
	}
	var r route
	r.Spec.Path = "/login"
	if !routeMatches(&r, "/login/callback") || routeMatches(&r, "/logout") {
		t.Error("a Route's path must match as a prefix")
	}
	r.Spec.Path = ""
	if !routeMatches(&r, "/healthz") {
		t.Error("a Route without a path takes every path")
	}
}
