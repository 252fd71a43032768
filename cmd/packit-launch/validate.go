package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

// validate checks a server config and, optionally, a repo config as the
// bot would judge it for a given repository.
func validate(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("config validate", flag.ContinueOnError)
	repoFile := fs.String("repo", "", "a .packit-launch.yaml to check")
	repoName := fs.String("for", "", "the OWNER/NAME the repo config belongs to")
	cfg, file, err := loadSettings(fs, args)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "server config %s: ok (%d projects, %d profiles)\n", orNone(file), len(cfg.Projects), len(cfg.Profiles))
	for _, m := range cfg.Missing() {
		fmt.Fprintf(stdout, "  not set: %s\n", m)
	}
	if *repoFile == "" {
		return nil
	}
	project, ok := cfg.ProjectFor(*repoName)
	if !ok {
		return &badSetup{fmt.Errorf("--for %q: not a repository this config trusts", *repoName)}
	}
	data, err := os.ReadFile(*repoFile)
	if err != nil {
		return &badSetup{err}
	}
	if _, err := cfg.ParseRepo(data, project); err != nil {
		return &badSetup{fmt.Errorf("%s: %w", *repoFile, err)}
	}
	fmt.Fprintf(stdout, "repo config %s for %s: ok\n", *repoFile, *repoName)
	return nil
}
