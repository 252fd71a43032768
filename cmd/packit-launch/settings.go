package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/joho/godotenv"

	"github.com/packit/packit-launch/config"
	"github.com/packit/packit-launch/store"
)

// loadSettings reads the server config with DESIGN.md's precedence:
// environment > .env > config file > defaults. --help is a *helpShown.
func loadSettings(fs *flag.FlagSet, args []string) (*config.Server, string, error) {
	path := fs.String("config", "", "server config file (default $PACKIT_LAUNCH_CONFIG or ./packit-launch.yaml)")
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil, "", &helpShown{commandUsage(fs.Name(), fs)}
	} else if err != nil {
		return nil, "", &badSetup{fmt.Errorf("%s: %w (see packit-launch %s --help)", fs.Name(), err, fs.Name())}
	}
	env, err := environment()
	if err != nil {
		return nil, "", &badSetup{err}
	}
	file := *path
	if file == "" {
		file = env["PACKIT_LAUNCH_CONFIG"]
	}
	if file == "" {
		if _, err := os.Stat("packit-launch.yaml"); err == nil {
			file = "packit-launch.yaml"
		}
	}
	var data []byte
	if file != "" {
		if data, err = os.ReadFile(file); err != nil {
			return nil, "", &badSetup{fmt.Errorf("read config: %w", err)}
		}
	}
	s, err := config.ParseServer(data, env)
	if err != nil {
		// s is what could be read, for a caller that says more.
		return s, file, &badSetup{fmt.Errorf("config %s: %w", orNone(file), err)}
	}
	return s, file, nil
}

// environment is .env overlaid by the real environment.
func environment() (map[string]string, error) {
	env := map[string]string{}
	if dotenv, err := godotenv.Read(".env"); err == nil {
		env = dotenv
	} else if !errors.Is(err, os.ErrNotExist) {
		// godotenv's errors quote the file's text, secrets included: never show them.
		return nil, errors.New(".env cannot be parsed: use NAME=value lines, quote values that span lines (or set GITHUB_PRIVATE_KEY_PATH instead of pasting the key)")
	}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env, nil
}

// privateKey returns the GitHub App key PEM from the setting or its file.
func privateKey(s *config.Server) ([]byte, error) {
	if pem := s.GitHub.PrivateKey.Reveal(); pem != "" {
		// Environments often carry the PEM with literal \n.
		return []byte(strings.ReplaceAll(pem, `\n`, "\n")), nil
	}
	data, err := os.ReadFile(s.GitHub.PrivateKeyPath)
	if err != nil {
		return nil, fmt.Errorf("GITHUB_PRIVATE_KEY_PATH: %w", err)
	}
	return data, nil
}

func orNone(file string) string {
	if file == "" {
		return "(none: defaults and environment)"
	}
	return file
}

// missingSettings are the settings cfg lacks, and REDIS_URL when this build
// has no embedded store to stand in for it.
func missingSettings(cfg *config.Server) []config.Setting {
	m := cfg.Missing()
	if cfg.RedisURL == "" && len(cfg.RedisSentinel.Addrs) == 0 && store.StartEmbedded == nil {
		m = append(m, config.Setting{Name: "REDIS_URL", How: "your Redis (redis://host:6379/0): this build has no embedded store (make run's has one, for trying the bot)"})
	}
	return m
}
