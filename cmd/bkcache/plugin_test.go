package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestPluginArgs(t *testing.T) {
	for _, tc := range []struct{ argv, want []string }{
		{[]string{"/usr/lib/docker/cli-plugins/docker-bkcache", "bkcache", "build", "--push"}, []string{"build", "--push"}},
		{[]string{"docker-bkcache", "docker-cli-plugin-metadata"}, []string{"docker-cli-plugin-metadata"}},
		{[]string{"/usr/local/bin/bkcache", "bkcache", "build"}, []string{"bkcache", "build"}}, // not a plugin: a service named bkcache stays
		{[]string{"bkcache", "build"}, []string{"build"}},
		{[]string{"docker-bkcache"}, []string{}},
	} {
		if got := pluginArgs(tc.argv); !slices.Equal(got, tc.want) {
			t.Errorf("pluginArgs(%q) = %q, want %q", tc.argv, got, tc.want)
		}
	}
}

// TestPluginMetadata: the docker CLI reads these four fields, and
// refuses a plugin whose SchemaVersion it does not know.
func TestPluginMetadata(t *testing.T) {
	var b bytes.Buffer
	if err := writePluginMetadata(&b); err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m["SchemaVersion"] != "0.1.0" || m["Vendor"] == "" || m["Version"] != version || m["ShortDescription"] == "" {
		t.Errorf("metadata %v", m)
	}
}

func TestInstallPlugin(t *testing.T) {
	self := filepath.Join(t.TempDir(), "bkcache")
	if err := os.WriteFile(self, []byte("binary"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "docker")
	for range 2 { // a second install replaces the first
		dst, err := installPlugin(self, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if dst != filepath.Join(cfg, "cli-plugins", "docker-bkcache") {
			t.Errorf("installed at %s", dst)
		}
		st, err := os.Stat(dst)
		if err != nil || st.Mode().Perm() != 0o755 || st.Size() != 6 {
			t.Errorf("installed %v, %v", st, err)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(cfg, "cli-plugins")); len(entries) != 1 {
		t.Errorf("cli-plugins holds %d entries, want the plugin alone", len(entries))
	}
}
