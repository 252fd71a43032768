package app

import (
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// app speaks GitHub; the lifecycle, the Launch service and AWS are
// provision's: app reaches them only through provision's API.
func TestAppImportsNeitherLaunchAPINorEC2(t *testing.T) {
	out, err := exec.CommandContext(t.Context(), "go", "list", "-f", `{{join .Imports "\n"}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, imp := range strings.Fields(string(out)) {
		if strings.HasPrefix(imp, "github.com/packit/packit-launch/provision/") {
			t.Errorf("app imports %s", imp)
		}
	}
}

// app shows outcomes; it decides nothing about states or timers. So it
// never writes a launch record through the store's record writers, nor a
// lifecycle field of one (only the report fields, through UpdateReport).
func TestAppWritesNoLifecycleField(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var srcs []string
	for _, name := range files {
		if !strings.HasSuffix(name, "_test.go") {
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			srcs = append(srcs, string(b))
		}
	}
	if len(srcs) < 10 {
		t.Fatalf("only %d files found", len(srcs))
	}
	imp := exportImporter(t)
	for _, v := range lifecycleWrites(t, imp, srcs...) {
		t.Errorf("app writes the lifecycle's part of a launch record: %s", v)
	}
	// The check itself finds what it looks for, and only that.
	bad := `package app
import "github.com/packit/packit-launch/store"
type other struct{ State string }
func f(st *store.Store, l *store.Launch, o *other) {
	l.State = "running"
	l.ExpiresAt, l.CommentID = l.CreatedAt, 1
	st.UpdateLaunch(nil, l.ID, nil)
	l.Report.CheckRunID, o.State = 2, "x"
}`
	if got := lifecycleWrites(t, imp, bad); len(got) != 3 {
		t.Errorf("the check found %d of 3 writes in a bad file: %v", len(got), got)
	}
}

// exportImporter imports packages from the compiler's export data, as go
// list builds it.
func exportImporter(t *testing.T) types.Importer {
	out, err := exec.CommandContext(t.Context(), "go", "list", "-export", "-deps", "-f", "{{.ImportPath}} {{.Export}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -export: %v", err)
	}
	exports := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if path, file, ok := strings.Cut(line, " "); ok && file != "" {
			exports[path] = file
		}
	}
	return importer.ForCompiler(token.NewFileSet(), "gc", func(path string) (io.ReadCloser, error) {
		file, ok := exports[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(file)
	})
}

// lifecycleWrites type-checks srcs as one package and lists its writes to
// a launch record's own fields (every field of store.Launch but its
// embedded Report's) and its calls of the store's record writers.
func lifecycleWrites(t *testing.T, imp types.Importer, srcs ...string) []string {
	t.Helper()
	fset := token.NewFileSet()
	var files []*ast.File
	for i, src := range srcs {
		f, err := parser.ParseFile(fset, fmt.Sprintf("src%d.go", i), src, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	info := &types.Info{Selections: map[*ast.SelectorExpr]*types.Selection{}}
	conf := types.Config{Importer: imp, Error: func(error) {}}
	if _, err := conf.Check("app", fset, files, info); err != nil {
		t.Fatalf("type-check: %v", err)
	}
	named := func(ty types.Type, name string) bool {
		if p, ok := ty.(*types.Pointer); ok {
			ty = p.Elem()
		}
		n, ok := ty.(*types.Named)
		return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == "github.com/packit/packit-launch/store" && n.Obj().Name() == name
	}
	writers := map[string]bool{"UpdateLaunch": true, "CreateLaunch": true, "RequestStop": true}
	var found []string
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.AssignStmt:
				for _, lhs := range n.Lhs {
					sel, ok := lhs.(*ast.SelectorExpr)
					if s := info.Selections[sel]; ok && s != nil && s.Kind() == types.FieldVal && named(s.Recv(), "Launch") && len(s.Index()) == 1 {
						found = append(found, fmt.Sprintf("%s: assigns .%s", fset.Position(sel.Pos()), sel.Sel.Name))
					}
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if s := info.Selections[sel]; ok && s != nil && s.Kind() == types.MethodVal && named(s.Recv(), "Store") && writers[sel.Sel.Name] {
					found = append(found, fmt.Sprintf("%s: calls .%s", fset.Position(sel.Pos()), sel.Sel.Name))
				}
			}
			return true
		})
	}
	return found
}
