package setup

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/joho/godotenv"
)

// writeEnv adds settings to a .env file (created with mode 0600), never
// overwriting a value already there; kept names the settings that were.
func writeEnv(path string, settings map[string]string) (kept []string, err error) {
	existing, err := godotenv.Read(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, errors.New(path + " cannot be parsed, so it was left as it is")
	}
	var lines []string
	for _, name := range slices.Sorted(maps.Keys(settings)) {
		if existing[name] != "" {
			kept = append(kept, name)
			continue
		}
		lines = append(lines, name+"="+quote(settings[name]))
	}
	if len(lines) == 0 {
		return kept, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(0o600); err != nil { // it holds the App's private key
		f.Close()
		return nil, err
	}
	_, err = fmt.Fprintf(f, "\n# Written by the setup page: the GitHub App's credentials.\n%s\n", strings.Join(lines, "\n"))
	return kept, errors.Join(err, f.Close())
}

// quote writes a value on one line in double quotes, newlines as \n, as
// godotenv reads them back.
func quote(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", "")
	return `"` + r.Replace(v) + `"`
}
