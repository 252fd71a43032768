package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/packit/packit-launch/config"
)

//go:generate sh -c "go run . config schema > ../../schema/packit-launch.schema.json"

// printSchema writes the JSON Schema of .packit-launch.yaml, which editors
// check the file with as it is typed; schema/ holds a copy.
func printSchema(args []string, stdout io.Writer) error {
	if len(args) == 1 && isHelp(args[0]) {
		return &helpShown{commandUsage("config schema", nil)}
	}
	if len(args) > 0 {
		return &badSetup{errors.New("config schema takes no arguments")}
	}
	b, err := config.RepoSchema()
	if err != nil {
		return err
	}
	if _, err := stdout.Write(b); err != nil {
		return fmt.Errorf("write the schema: %w", err)
	}
	return nil
}
