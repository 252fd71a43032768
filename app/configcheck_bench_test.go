package app

import (
	"testing"

	"github.com/packit/packit-launch/config"
)

// BenchmarkConfigCheckHostileFile is the config check of the largest file
// GitHub's contents API serves, with 30,001 problems (BENCHMARKS.md).
func BenchmarkConfigCheckHostileFile(b *testing.B) {
	cfg, err := config.ParseServer([]byte(e2eServerConfig), nil)
	if err != nil {
		b.Fatal(err)
	}
	project, _ := cfg.ProjectFor("packit/ogr")
	data := hostileRepoConfig()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if out := checkRepoConfig(cfg, project, data); out.conclusion != "failure" {
			b.Fatal(out.title)
		}
	}
}
