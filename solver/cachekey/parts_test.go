package cachekey

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestParse: a graph whose records or links do not hold together is
// refused, saying how.
func TestParse(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`[{"id":1},{"id":2,"parents":[{"input":0,"digest":"sha256:a","target":1}]}]`, ""},
		{`{"id":1}`, "malformed cache-key graph"},
		{`[null]`, "a null record"},
		{`[{"id":1},{"id":1}]`, "record 1 twice"},
		{`[{"id":2,"parents":[{"input":0,"digest":"sha256:a","target":7}]}]`, "record 2 links to 7"},
	} {
		g, err := Parse([]byte(tc.in))
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s): %v, want %q", tc.in, err, tc.want)
		}
		if g != nil && g.HasPlaintexts() {
			t.Errorf("Parse(%s): plaintexts in a graph without any", tc.in)
		}
	}
	if !readGraph(t, "load-fresh.json").HasPlaintexts() {
		t.Error("a daemon's graph with plaintexts has none")
	}
}

// TestMatches: an operation is placed on the instruction that asked for
// it, and on no other.
func TestMatches(t *testing.T) {
	sh := func(cmd string) *Op { return &Op{Args: []string{"/bin/sh", "-c", cmd}} }
	copies := func(srcs ...string) *Op { return &Op{Copies: srcs} }
	for _, tc := range []struct {
		op          *Op
		instruction string
		want        bool
	}{
		{sh("echo two   > /two"), "RUN echo two   > /two", true},
		{sh("echo two > /two"), "RUN echo two \t > /two", true},
		{sh("go build ./..."), "RUN --mount=type=cache,target=/root/.cache --network=none go build ./...", true},
		{sh("echo one"), "RUN echo two", false},
		{&Op{Args: []string{"/app", "--flag"}}, `RUN ["/app", "--flag"]`, true},
		{&Op{Args: []string{"/app"}}, `RUN ["/app", "--flag"]`, false},
		{&Op{}, "RUN true", false},
		{copies("src"), "COPY src/ src/", true},
		{copies("a.txt", "b.txt"), "COPY b.txt ./a.txt /dst/", true},
		{copies("a.txt"), "COPY a.txt b.txt /dst/", false},
		{copies("app/app.js"), "COPY --from=build /app/app.js /app.js", true},
		{copies("a.txt"), `COPY ["a.txt", "/dst/"]`, true},
		{copies("late.txt"), "ADD --chmod=644 late.txt .", true},
		{copies("a.txt"), "COPY a.txt", false},
		{&Op{Mkdirs: []string{"/app"}}, "WORKDIR /app", true},
		{&Op{Mkdirs: []string{"/app/src"}}, "WORKDIR src", true},
		{&Op{Mkdirs: []string{"/srv"}}, "WORKDIR /app", false},
		{sh("true"), "ENV A=b", false},
	} {
		if got := tc.op.matches(tc.instruction); got != tc.want {
			t.Errorf("%+v matches %q: %v, want %v", tc.op, tc.instruction, got, tc.want)
		}
	}
}

// TestDiffFiles: each file that differs is named with what differs in it,
// under the directory the step copies.
func TestDiffFiles(t *testing.T) {
	f := func(d string, fields ...string) file { return file{digest: d, fields: fields} }
	was := map[string]file{
		"a.txt": f("1", "mode420", "uid0", "gid0", "size2"),
		"b.txt": f("2", "mode420", "uid0", "gid0", "size2"),
		"c.txt": f("3", "mode420", "uid0", "gid0", "size2"),
		"gone":  f("4", "mode420"),
	}
	now := map[string]file{
		"a.txt": f("1", "mode420", "uid0", "gid0", "size2"), // the same
		"b.txt": f("5", "mode493", "uid0", "gid0", "size2"),
		"c.txt": f("6", "mode420", "uid0", "gid0", "size2"), // content only
		"new":   f("7", "mode420"),
	}
	got := strings.Join(diffFiles(now, was, "src"), "; ")
	want := "src/b.txt: mode 493 (was 420); src/c.txt: its content; src/gone: removed; src/new: added"
	if got != want {
		t.Errorf("diffFiles:\n got %s\nwant %s", got, want)
	}
	if got := diffFiles(map[string]file{"": f("1", "uid5")}, map[string]file{"": f("2", "uid0")}, ""); len(got) != 1 || got[0] != "the source: uid 5 (was 0)" {
		t.Errorf("a single file: %q", got)
	}
	if ownersHint([]string{"a: uid 1 (was 0), gid 1 (was 0)"}) == "" || ownersHint([]string{"a: uid 1 (was 0)", "b: its content"}) != "" {
		t.Error("the owners hint is for differences in owners alone")
	}
}

// FuzzMatches: a shell-form RUN matches the command it runs, whatever
// its spacing, and not a command of other words.
func FuzzMatches(f *testing.F) {
	f.Add("echo two   > /two", "echo one")
	f.Add("go build ./...", "go  build  ./...")
	f.Fuzz(func(t *testing.T, cmd, other string) {
		if strings.TrimSpace(cmd) == "" || strings.HasPrefix(strings.TrimSpace(cmd), "--") || strings.HasPrefix(strings.TrimSpace(cmd), "[") {
			return
		}
		op := &Op{Args: []string{"/bin/sh", "-c", cmd}}
		if !op.matches("RUN " + strings.Join(strings.Fields(cmd), "  ")) {
			t.Errorf("RUN %q does not match its own command", cmd)
		}
		if strings.Join(strings.Fields(other), " ") != strings.Join(strings.Fields(cmd), " ") && op.matches("RUN "+other) && !strings.HasPrefix(strings.TrimSpace(other), "--") {
			t.Errorf("RUN %q matches the command %q", other, cmd)
		}
	})
}

// TestClient: an address buildkitd's --debugaddr would not take is
// refused, and a daemon that does not answer there is named with how to
// make it.
func TestClient(t *testing.T) {
	for addr, ok := range map[string]bool{"unix:///run/d.sock": true, "tcp://127.0.0.1:6060": true, "127.0.0.1:6060": true, "http://x": false} {
		if _, err := NewClient(addr); (err == nil) != ok {
			t.Errorf("NewClient(%q): %v", addr, err)
		}
	}
	sock := "unix://" + filepath.Join(t.TempDir(), "none.sock")
	c, _ := NewClient(sock)
	_, err := c.Store(context.Background())
	if err == nil || !strings.Contains(err.Error(), sock) || !strings.Contains(err.Error(), "--debugaddr") {
		t.Errorf("no daemon: %v", err)
	}
}

// digestIn is the full digest in the named graph file that starts with
// prefix.
func digestIn(t *testing.T, name, prefix string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return findDigest(t, b, prefix)
}

// TestOpDecode: an operation's plaintext gives its command, its copies'
// sources and the directories it makes; a digest without plaintext, none.
func TestOpDecode(t *testing.T) {
	g := readGraph(t, "load-chown.json")
	run := g.op(digestIn(t, "load-chown.json", "sha256:b85c83198f47"))
	if run == nil || run.Type != "buildkit.exec.v0" || fmt.Sprint(run.Args) != "[/bin/sh -c echo $MODE > mode && cat src/* > all]" ||
		run.fields["Exec.meta.cwd"] != "/app" || run.fields["Exec.meta.env[1]"] != "MODE=fast" {
		t.Errorf("the RUN: %+v", run)
	}
	cp := g.op(digestIn(t, "load-chown.json", "sha256:52aa4e164375"))
	if cp == nil || cp.Type != "buildkit.file.v0" || fmt.Sprint(cp.Copies) != "[src]" || len(cp.Mkdirs) != 0 || cp.fields["Actions[0].dest"] != "/app/src/" {
		t.Errorf("the COPY: %+v", cp)
	}
	if wd := g.op(digestIn(t, "load-chown.json", "sha256:807b3e8722c6")); wd == nil || fmt.Sprint(wd.Mkdirs) != "[/app]" || len(wd.Copies) != 0 {
		t.Errorf("the WORKDIR: %+v", wd)
	}
	if o := g.op("sha256:00"); o != nil {
		t.Errorf("an unknown digest: %+v", o)
	}
	if o := g.op(digestIn(t, "load-chown.json", "sha256:8a5edab28263")); o != nil {
		t.Errorf("a plaintext that is not an operation: %+v", o)
	}
}

// TestFiles: a content checksum's plaintext gives each file it read,
// with its header fields, by path: a directory's files under it, a
// single file as "".
func TestFiles(t *testing.T) {
	g := readGraph(t, "load-chown.json")
	dir, ok := g.files(digestIn(t, "load-chown.json", "sha256:39f1d68ebfb7"))
	if !ok || len(dir) != 3 || dir["a.txt"].digest == "" || dir["a.txt"].digest == dir["b.txt"].digest ||
		fmt.Sprint(dir["a.txt"].fields[:5]) != "[name mode420 uid0 gid0 size2]" || fmt.Sprint(dir[""].fields[1:2]) != "[mode493]" {
		t.Errorf("src/: %v %+v", ok, dir)
	}
	one, ok := g.files(digestIn(t, "load-chown.json", "sha256:d1a42bcfdc32"))
	if !ok || len(one) != 1 || fmt.Sprint(one[""].fields[4:5]) != "[size5]" {
		t.Errorf("late.txt: %v %+v", ok, one)
	}
	for _, d := range []string{"sha256:00", digestIn(t, "load-chown.json", "sha256:170eb3c73f2d")} {
		if f, ok := g.files(d); ok {
			t.Errorf("%s is no content checksum, yet files: %+v", d, f)
		}
	}
}

// TestOpDiff: the env is compared by name, the rest field by field; each
// difference says what it is now and what it was.
func TestOpDiff(t *testing.T) {
	now := &Op{fields: map[string]string{"Exec.meta.env[0]": "A=1", "Exec.meta.env[1]": "B=2", "Exec.meta.cwd": "/app", "Exec.network": "1", "same": "x"}}
	was := &Op{fields: map[string]string{"Exec.meta.env[0]": "C=3", "Exec.meta.env[1]": "A=2", "Exec.meta.cwd": "/srv", "Exec.security": "1", "same": "x"}}
	want := []string{
		"env A: 1 (was 2)", "env B: 2 (was unset)", "env C: unset (was 3)",
		"Exec.meta.cwd: /app (was /srv)", "Exec.network: 1 (was unset)", "Exec.security: unset (was 1)",
	}
	if got := now.diff(was); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("diff:\n got %q\nwant %q", got, want)
	}
	if got := now.diff(now); len(got) != 0 {
		t.Errorf("an op differs from itself: %q", got)
	}
	if quote("a b") != `"a b"` || quote("") != `""` || quote("ab") != "ab" {
		t.Error("quote")
	}
}
