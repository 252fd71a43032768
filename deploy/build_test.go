package deploy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/version"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

const modulePath = "github.com/packit/packit-launch"

// goPackage is one package of `go list -json`.
type goPackage struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
	Module     *struct{ Path string }
}

// goCommand is the go command that runs this test: go test puts its
// GOROOT's bin first on the test's PATH (runtime.GOROOT is deprecated: the
// root the test was built with need not be this machine's). An explicit
// GOROOT wins.
func goCommand() (string, error) {
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return exec.LookPath("go")
}

// binaryPackages lists the packages the packit-launch binary links, as
// `go list -deps` says (the module root is deploy/'s parent).
func binaryPackages() ([]goPackage, error) {
	gocmd, err := goCommand()
	if err != nil {
		return nil, fmt.Errorf("no go command to list the binary's packages: %v", err)
	}
	cmd := exec.Command(gocmd, "list", "-deps", "-json=ImportPath,Dir,GoFiles,Imports,Module", "./cmd/packit-launch")
	cmd.Dir = ".."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps ./cmd/packit-launch: %v\n%s", err, stderr.String())
	}
	var pkgs []goPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p goPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		pkgs = append(pkgs, p)
	}
	var own []goPackage
	for _, p := range pkgs {
		if p.Module != nil && p.Module.Path == modulePath {
			own = append(own, p)
		}
	}
	if !slices.ContainsFunc(own, func(p goPackage) bool { return p.ImportPath == modulePath+"/app" }) {
		return nil, fmt.Errorf("go list -deps ./cmd/packit-launch does not list %s/app: %d packages", modulePath, len(pkgs))
	}
	return append(own, otherPackages(pkgs)...), nil
}

// otherPackages are the linked packages of other modules, kept (with no
// GoFiles) for TestBinaryLinksNoDeployDependencies.
func otherPackages(pkgs []goPackage) []goPackage {
	var out []goPackage
	for _, p := range pkgs {
		if p.Module == nil || p.Module.Path != modulePath {
			out = append(out, goPackage{ImportPath: p.ImportPath})
		}
	}
	return out
}

// TestBinaryLinksNoDeployDependencies: the Kubernetes, Prometheus-server,
// Prometheus Operator and ignore-file modules this package's tests use never
// reach the binary.
func TestBinaryLinksNoDeployDependencies(t *testing.T) {
	pkgs, err := binaryPackages()
	if err != nil {
		t.Fatal(err)
	}
	forbidden := regexp.MustCompile(`^(k8s\.io/|sigs\.k8s\.io/|github\.com/prometheus/prometheus(/|$)|github\.com/prometheus-operator/|github\.com/openshift/|github\.com/moby/patternmatcher)`)
	for _, p := range pkgs {
		if forbidden.MatchString(p.ImportPath) || p.ImportPath == modulePath+"/deploy" {
			t.Fatalf("the packit-launch binary links %s, which only deploy/'s tests may use", p.ImportPath)
		}
	}
}

// TestContainerfile: the build stage's Go satisfies go.mod, and the image
// runs as a numeric non-root user.
func TestContainerfile(t *testing.T) {
	raw, err := os.ReadFile("Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	cf := string(raw)
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	need := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(gomod)
	if need == nil {
		t.Fatal("go.mod has no go line")
	}
	want := "go" + string(need[1])
	if tc := regexp.MustCompile(`(?m)^toolchain (go\S+)$`).FindSubmatch(gomod); tc != nil && version.Compare(string(tc[1]), want) > 0 {
		want = string(tc[1])
	}
	from := regexp.MustCompile(`(?m)^FROM (\S+) AS build$`).FindStringSubmatch(cf)
	if from == nil {
		t.Fatal("Containerfile: no `FROM … AS build` stage")
	}
	tag := regexp.MustCompile(`^docker\.io/library/golang:(\d+\.\d+(?:\.\d+)?)(?:-\S+)?$`).FindStringSubmatch(from[1])
	if tag == nil {
		t.Fatalf("Containerfile: the build stage %s is not an official golang image pinned to a Go version: the test cannot tell whether its Go satisfies go.mod", from[1])
	}
	if version.Compare("go"+tag[1], want) < 0 {
		t.Fatalf("Containerfile: the build stage's Go %s is older than go.mod's %s", tag[1], want)
	}
	if !regexp.MustCompile(`(?m)^ENV .*\bGOTOOLCHAIN=local\b`).MatchString(cf) {
		t.Fatal("Containerfile: the build stage must set GOTOOLCHAIN=local (its Go is pinned; nothing is downloaded)")
	}
	users := regexp.MustCompile(`(?m)^USER (\S+)$`).FindAllStringSubmatch(cf, -1)
	if len(users) == 0 || !regexp.MustCompile(`^[1-9]\d*$`).MatchString(users[len(users)-1][1]) {
		t.Fatal("Containerfile: the image must end with a numeric non-root USER (Kubernetes' runAsNonRoot checks it)")
	}
}

// TestIgnoreFiles: .containerignore and .dockerignore hold the same patterns,
// keep secrets, built files and .git out of the build context, and keep
// everything the build needs in it (read as Docker and Buildah read them).
func TestIgnoreFiles(t *testing.T) {
	var lists [][]string
	for _, f := range []string{"../.containerignore", "../.dockerignore"} {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		patterns, err := ignorefile.ReadAll(fh)
		fh.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		lists = append(lists, patterns)
	}
	if !slices.Equal(lists[0], lists[1]) {
		t.Fatalf(".containerignore and .dockerignore differ:\n%q\n%q", lists[0], lists[1])
	}
	pm, err := patternmatcher.New(lists[0])
	if err != nil {
		t.Fatal(err)
	}
	matches := func(path string) bool {
		m, err := pm.MatchesOrParentMatches(path)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, out := range []string{".env", ".env.local", "setup/.env", "key.pem", "packit-launch.2026-01-01.private-key.pem", "deploy/secret/app.pem", "bin/packit-launch", "dist/x", "packit-launch", ".git/HEAD", "dump.rdb", "app.test"} {
		if !matches(out) {
			t.Fatalf("the build context keeps %s", out)
		}
	}
	// In: go.mod, go.sum, every Go file, and every file a //go:embed names.
	keep := []string{"go.mod", "go.sum"}
	embed := regexp.MustCompile(`(?m)^//go:embed (.+)$`)
	err = filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("..", path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") {
			return nil
		}
		keep = append(keep, rel)
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range embed.FindAllStringSubmatch(string(src), -1) {
			for _, pat := range strings.Fields(m[1]) {
				files, _ := filepath.Glob(filepath.Join(filepath.Dir(path), strings.Trim(pat, `"`)))
				if len(files) == 0 {
					return fmt.Errorf("%s: //go:embed %s matches nothing", rel, pat)
				}
				for _, f := range files {
					r, _ := filepath.Rel("..", f)
					keep = append(keep, filepath.ToSlash(r))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range keep {
		if matches(in) {
			t.Fatalf("the build context loses %s, which the build needs", in)
		}
	}
}

// TestReadmeDeployment: README's Deployment section names every file of
// deploy/ (and no file that is not there), and its commands apply them as
// they are.
func TestReadmeDeployment(t *testing.T) {
	sec := readmeSection(t, "## Deployment")
	named := map[string]bool{}
	for _, m := range regexp.MustCompile("deploy/[A-Za-z0-9_./-]*[A-Za-z0-9_/]").FindAllString(sec, -1) {
		named[m] = true
		if _, err := os.Stat("../" + m); err != nil {
			t.Fatalf("README, Deployment, names %s: %v", m, err)
		}
	}
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, ".go") {
			return err
		}
		p := "deploy/" + filepath.ToSlash(path)
		if !named[p] && !named[filepath.Dir(p)+"/"] && !named[filepath.Dir(p)] {
			t.Errorf("README, Deployment, does not name %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Every kubectl/oc/podman command of the section names files that exist.
	sc := bufio.NewScanner(strings.NewReader(sec))
	cmds := 0
	for sc.Scan() {
		for _, m := range regexp.MustCompile("`((?:kubectl|oc|podman) [^`]*)`").FindAllStringSubmatch(sc.Text(), -1) {
			cmds++
			for _, f := range regexp.MustCompile(`-f (\S+)`).FindAllStringSubmatch(m[1], -1) {
				if _, err := os.Stat("../" + f[1]); err != nil {
					t.Fatalf("README, Deployment: %q: %v", m[1], err)
				}
			}
		}
	}
	if cmds == 0 {
		t.Fatal("README, Deployment, shows no command that applies deploy/")
	}
	if !strings.Contains(sec, "kubectl apply -f deploy/kubernetes/") {
		t.Fatal("README, Deployment: `kubectl apply -f deploy/kubernetes/` is the command the manifests' comments give")
	}
}
