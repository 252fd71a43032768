package main

import (
	"os"
	"strings"
	"testing"
)

// The committed schema, which editors fetch from GitHub, is what the types
// say today.
func TestCommittedSchemaIsUpToDate(t *testing.T) {
	committed, err := os.ReadFile("../../schema/packit-launch.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd("config", "schema")
	if code != 0 {
		t.Fatalf("config schema: code %d\n%s", code, errs)
	}
	if out != string(committed) {
		t.Errorf("schema/packit-launch.schema.json is out of date: run `go generate ./cmd/packit-launch` " +
			"(or `go run ./cmd/packit-launch config schema > schema/packit-launch.schema.json`) and commit it")
	}
}

func TestConfigSubcommands(t *testing.T) {
	for _, args := range [][]string{{"config"}, {"config", "frobnicate"}, {"config", "schema", "extra"}} {
		code, out, errs := runCmd(args...)
		if code != exitUsage || out != "" || !strings.Contains(errs, "config") {
			t.Errorf("%q: code %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
}
