package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/bkcache/bkcache/solver/engine"
	"github.com/spf13/cobra"
)

// The same binary is a docker CLI plugin when installed as
// docker-bkcache in a cli-plugins directory: the docker CLI asks it for
// its metadata, then runs `docker-bkcache bkcache ARGS...` for
// `docker bkcache ARGS...`.

// pluginName is the command the docker CLI adds: `docker bkcache`.
const pluginName = "bkcache"

// pluginMetadata is the docker CLI plugin schema, version 0.1.0.
type pluginMetadata struct {
	SchemaVersion    string `json:"SchemaVersion"`
	Vendor           string `json:"Vendor"`
	Version          string `json:"Version"`
	ShortDescription string `json:"ShortDescription"`
	URL              string `json:"URL,omitempty"`
}

// pluginArgs are the arguments of a run: when the docker CLI runs the
// plugin, it passes the plugin's name first, which is not one of
// bkcache's commands.
func pluginArgs(argv []string) []string {
	args := argv[1:]
	if strings.HasPrefix(filepath.Base(argv[0]), "docker-") && len(args) > 0 && args[0] == pluginName {
		return args[1:]
	}
	return args
}

func newPluginMetadataCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "docker-cli-plugin-metadata",
		Short:  "Print the docker CLI plugin metadata (the docker CLI asks it)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return writePluginMetadata(cmd.OutOrStdout())
		},
	}
}

func writePluginMetadata(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(pluginMetadata{
		SchemaVersion: "0.1.0", Vendor: "bkcache", Version: version, URL: "https://github.com/bkcache/bkcache",
		ShortDescription: "Build a compose project's images, skipping what has not changed",
	})
}

func newInstallPluginCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "install-plugin",
		Short: "Install this binary as the docker CLI plugin `docker bkcache` ($DOCKER_CONFIG/cli-plugins/docker-bkcache)",
		Example: `  bkcache install-plugin && docker bkcache build --push
  DOCKER_CONFIG=/ci/docker bkcache install-plugin   # a docker CLI run with that DOCKER_CONFIG finds it`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			dst, err := installPlugin(self, engine.HostEnv().ConfigDir())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "installed %s: run `docker bkcache build`\n", dst)
			return nil
		},
	}
}

// installPlugin copies the binary at self into configDir/cli-plugins as
// docker-bkcache, replacing an older one atomically.
func installPlugin(self, configDir string) (string, error) {
	dir := filepath.Join(configDir, "cli-plugins")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("installing the docker CLI plugin: %w", err)
	}
	name := "docker-" + pluginName
	if filepath.Ext(self) == ".exe" {
		name += ".exe"
	}
	dst := filepath.Join(dir, name)
	src, err := os.Open(self)
	if err != nil {
		return "", err
	}
	defer src.Close()
	tmp, err := os.CreateTemp(dir, "."+name+"-")
	if err != nil {
		return "", fmt.Errorf("installing the docker CLI plugin: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, src); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return dst, os.Rename(tmp.Name(), dst)
}
