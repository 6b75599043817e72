package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestArchivesReproducible: the same entries give the same bytes, whatever
// the files' times, their order or the umask; the archive holds them
// sorted, at the epoch, owned by 0:0.
func TestArchivesReproducible(t *testing.T) {
	epoch := time.Unix(1764930000, 0).UTC()
	write := func(t *testing.T, mtime time.Time, reverse bool, w func(string, []entry, time.Time) error) []byte {
		dir := t.TempDir()
		var entries []entry
		for _, name := range []string{"bkcache", "README.md", "LICENSE"} {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte("content of "+name), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(p, mtime, mtime); err != nil {
				t.Fatal(err)
			}
			entries = append(entries, entry{name: name, path: p, mode: 0o644})
		}
		if reverse {
			entries[0], entries[2] = entries[2], entries[0]
		}
		out := filepath.Join(dir, "out")
		if err := w(out, entries, epoch); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for name, w := range map[string]func(string, []entry, time.Time) error{"tar.gz": writeTarGz, "zip": writeZip} {
		a := write(t, time.Now(), false, w)
		b := write(t, time.Unix(1, 0), true, w)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two writes of the same entries differ", name)
		}
	}
	gz, err := gzip.NewReader(bytes.NewReader(write(t, time.Now(), true, writeTarGz)))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(epoch) || h.Uid != 0 || h.Gid != 0 || h.Uname != "" {
			t.Errorf("%s: mtime %v, owner %d:%d %q; want the epoch and 0:0", h.Name, h.ModTime, h.Uid, h.Gid, h.Uname)
		}
		names = append(names, h.Name)
	}
	if got := names; len(got) != 3 || got[0] != "LICENSE" || got[1] != "README.md" || got[2] != "bkcache" {
		t.Errorf("entries %v, want them sorted", got)
	}
	if !gz.Header.ModTime.IsZero() || gz.Header.Name != "" {
		t.Errorf("gzip header carries %q at %v", gz.Header.Name, gz.Header.ModTime)
	}
}

func TestPick(t *testing.T) {
	if p, err := pick("linux/amd64, windows/amd64"); err != nil || len(p) != 2 || p[1] != (Platform{"windows", "amd64"}) {
		t.Errorf("pick = %v, %v", p, err)
	}
	if _, err := pick("plan9/386"); err == nil {
		t.Error("pick took a platform the release does not build")
	}
	if p, _ := pick(""); len(p) != len(Platforms) {
		t.Errorf("pick(\"\") = %v, want every platform", p)
	}
}

// TestUnlicensed: a release version needs a LICENSE; a pre-release,
// a pseudo-version and CI's do not.
func TestUnlicensed(t *testing.T) {
	for _, tc := range []struct {
		version string
		refused bool
	}{
		{"v1.0.0", true},
		{"v0.2.0", true},
		{"v1.0.0-rc.1", false},
		{"v0.0.0-ci", false},
		{"v0.0.0-20261207024209-5f51ed6a1b2c", false},
	} {
		err := unlicensed(tc.version)
		if (err != nil) != tc.refused {
			t.Errorf("%s: %v, refused %v", tc.version, err, tc.refused)
		}
		if err != nil && !strings.Contains(err.Error(), "LICENSE") {
			t.Errorf("%s: %v does not name the missing LICENSE", tc.version, err)
		}
	}
}
