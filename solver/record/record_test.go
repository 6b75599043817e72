package record

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/bkcache/bkcache/hash/inputs"
	digest "github.com/opencontainers/go-digest"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

var project = map[string]string{
	"compose.yaml":    "name: m\nservices:\n  app:\n    build:\n      context: ./app\n      args: {VERSION: '1', TOKEN: hunter2}\n      secrets: [s]\n      additional_contexts: {base: 'service:base', img: 'docker-image://busybox'}\n  base:\n    build: ./base\nsecrets:\n  s: {file: ./s.txt}\n",
	"s.txt":           "secret-value",
	"app/Dockerfile":  "FROM base\nARG VERSION\nCOPY src/ /src/\nRUN --mount=type=secret,id=s true\n",
	"app/src/a.txt":   "a",
	"app/src/b.sh":    "b",
	"base/Dockerfile": "FROM scratch\nCOPY x /\n",
	"base/x":          "x",
}

func compute(t *testing.T, dir string) map[string]*inputs.Inputs {
	t.Helper()
	p, err := compose.LoadAnd(context.Background(), compose.Options{ProjectDir: dir}, func(*compose.Project) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := p.Select(nil)
	if err != nil {
		t.Fatal(err)
	}
	all, err := inputs.ComputeAll(context.Background(), svcs, inputs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*inputs.Inputs{}
	for _, in := range all {
		out[in.Service] = in
	}
	return out
}

func TestSchema(t *testing.T) {
	c := jsonschema.NewCompiler()
	sch, err := c.Compile(filepath.Join("..", "..", "docs", "manifest.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	dir := sourcetest.Tree(t, project)
	m := New("m", "test", time.Unix(1700000000, 0))
	m.Buildkit = &Buildkit{Address: "unix:///run/buildkit/buildkitd.sock", Version: "v0.33.1", Worker: "oci"}
	for _, in := range compute(t, dir) {
		in = inputs.NewRedaction([]string{"TOKEN"}, "k").Inputs(in)
		m.Services = append(m.Services, &Service{
			Service: in.Service, Status: "built", Hash: in.Tag(), Scheme: in.Scheme, Inputs: in,
			Image: "reg/app:" + in.Tag(), Digest: digest.Digest("sha256:" + strings.Repeat("a", 64)),
			Cache: &Cache{Imports: []string{"reg/app:cache-ci"}, Exports: []string{}},
			Steps: &Steps{Cached: 1, Total: 3, List: []Step{
				{Stage: "deps", Line: 2, Instruction: "COPY a.txt /a.txt", Status: StepCached},
				{Stage: "stage-1", Line: 6, Instruction: "RUN make", Status: StepRan, DurationMs: 1200},
			}},
			Timing: &Timing{TotalMs: 12},
		})
	}
	var buf bytes.Buffer
	if err := m.Write(&buf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "secret-value") || strings.Contains(buf.String(), "hunter2") {
		t.Fatal("a secret or a redacted arg value reached the manifest")
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(doc); err != nil {
		t.Fatalf("manifest does not match docs/manifest.schema.json: %v", err)
	}
	// And the round trip keeps everything.
	back, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if r := Compare(back.Find("app").Inputs, m.Find("app").Inputs, inputs.NewRedaction(nil, "k")); !r.Empty() || !r.Same {
		t.Fatalf("round trip changed the inputs: %+v", r)
	}
}

func TestParseErrors(t *testing.T) {
	for in, want := range map[string]string{
		`{"schemaVersion": 2}`:                "unsupported manifest schema version 2",
		`{"services": []}`:                    "no schemaVersion",
		`not json`:                            "not a bkcache manifest",
		`{"schemaVersion": 1, "services": 3}`: "malformed",
	} {
		_, err := Parse([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%s) = %v, want %q", in, err, want)
		}
	}
	if _, err := Parse([]byte(`{"schemaVersion": 9}`)); !errors.Is(err, ErrSchema) {
		t.Errorf("want ErrSchema, got %v", err)
	}
}

func TestCompare(t *testing.T) {
	ref := compute(t, sourcetest.Tree(t, project))
	edit := func(files map[string]string, drop ...string) map[string]*inputs.Inputs {
		p := map[string]string{}
		for k, v := range project {
			p[k] = v
		}
		for k, v := range files {
			p[k] = v
		}
		dir := sourcetest.Tree(t, p)
		for _, d := range drop {
			os.Remove(filepath.Join(dir, d))
		}
		return compute(t, dir)
	}
	for _, tc := range []struct {
		name    string
		cur     map[string]*inputs.Inputs
		service string
		want    []string // lines of the rendered report, in order
	}{
		{"nothing", ref, "app", nil},
		{"file modified", edit(map[string]string{"app/src/a.txt": "A"}), "app", []string{"file context:src/a.txt modified"}},
		{"file added and removed", edit(map[string]string{"app/src/c.txt": "c"}, "app/src/b.sh"), "app", []string{"file context:src/b.sh removed", "file context:src/c.txt added"}},
		{"arg", edit(map[string]string{"compose.yaml": strings.Replace(project["compose.yaml"], "VERSION: '1'", "VERSION: '2'", 1)}), "app", []string{"arg VERSION 1 -> 2"}},
		{"dockerfile line", edit(map[string]string{"app/Dockerfile": strings.Replace(project["app/Dockerfile"], "COPY src/ /src/", "COPY src/ /app/", 1)}), "app", []string{"dockerfile - 3 COPY src/ /src/", "dockerfile + 3 COPY src/ /app/"}},
		{"dependency moved", edit(map[string]string{"base/x": "y"}), "app", []string{"context base"}},
		{"secret id", edit(map[string]string{"compose.yaml": strings.Replace(project["compose.yaml"], "secrets: [s]", "secrets: [{source: s, target: t}]", 1)}), "app", []string{"secret s", "secret t"}},
		{"provenance", edit(map[string]string{"compose.yaml": strings.Replace(project["compose.yaml"], "secrets: [s]", "secrets: [s]\n      provenance: mode=max\n      sbom: 'true'", 1)}), "app",
			[]string{"setting provenance mode=min -> mode=max", "setting sbom none -> generator=" + compose.DefaultSBOMGenerator}},
		{"run keys", edit(map[string]string{"compose.yaml": strings.Replace(project["compose.yaml"], "secrets: [s]", "secrets: [s]\n      extra_hosts: [db=10.0.0.1]\n      ulimits: {nofile: 1024}", 1)}), "app",
			[]string{"setting extra_hosts  -> db", "setting ulimits  -> nofile=1024:1024"}},
		{"secret value is not a change", edit(map[string]string{"s.txt": "other"}), "app", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Compare(ref[tc.service], tc.cur[tc.service], inputs.Redaction{})
			got := render(r)
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("report:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if r.Same != (len(tc.want) == 0) {
				t.Fatalf("Same = %v", r.Same)
			}
		})
	}
}

// TestCompareExtraHostAddress: an extra host moved to another address
// is no change (BuildKit keys RUN steps on the names only); a host added
// is one, named.
func TestCompareExtraHostAddress(t *testing.T) {
	with := func(hosts string) *inputs.Inputs {
		p := maps.Clone(project)
		p["compose.yaml"] = strings.Replace(project["compose.yaml"], "secrets: [s]", "secrets: [s]\n      extra_hosts: ["+hosts+"]", 1)
		return compute(t, sourcetest.Tree(t, p))["app"]
	}
	one := with("db=10.0.0.1")
	if r := Compare(one, with("db=10.0.0.2"), inputs.Redaction{}); !r.Same || !r.Empty() {
		t.Errorf("address moved: %q", render(r))
	}
	r := Compare(one, with("db=10.0.0.1, cache=10.0.0.3"), inputs.Redaction{})
	if got := strings.Join(render(r), "|"); got != "setting extra_hosts db -> cache,db" {
		t.Errorf("host added: %q", got)
	}
}

// TestCompareRedacted: inputs recorded with --redact-arg compared with
// inputs that are not (explain's current inputs, or a record written
// without the flag), in either order, show an arg's change as a change
// of MACs and its sameness as no change where the key can tell, say it
// cannot tell where it cannot (no key, another key), and never show the
// value.
func TestCompareRedacted(t *testing.T) {
	dir := sourcetest.Tree(t, project)
	same := compute(t, dir)["app"]
	edited := strings.Replace(project["compose.yaml"], "TOKEN: hunter2", "TOKEN: hunter3", 1)
	os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(edited), 0o644)
	changed := compute(t, dir)["app"]
	key, other, none := inputs.NewRedaction([]string{"TOKEN"}, "k1"), inputs.NewRedaction([]string{"TOKEN"}, "k2"), inputs.NewRedaction([]string{"TOKEN"}, "")
	plain := inputs.NewRedaction(nil, "k1") // explain without --redact-arg, with the key
	mac := func(v string) string { return key.Value(v) }
	legacy := func(in *inputs.Inputs) *inputs.Inputs {
		cp := *in
		cp.Args = maps.Clone(in.Args)
		sum := sha256.Sum256([]byte(in.Args["TOKEN"]))
		cp.Args["TOKEN"] = legacyPrefix + hex.EncodeToString(sum[:])
		return &cp
	}
	for _, tc := range []struct {
		name     string
		old, cur *inputs.Inputs
		red      inputs.Redaction
		want     []string
	}{
		{"recorded keyed, same value", key.Inputs(same), same, plain, nil},
		{"recorded keyed, value changed", key.Inputs(same), changed, plain, []string{"arg TOKEN " + mac("hunter2") + " -> " + mac("hunter3")}},
		{"redacted only in the newer", same, key.Inputs(changed), plain, []string{"arg TOKEN " + mac("hunter2") + " -> " + mac("hunter3")}},
		{"both keyed", key.Inputs(same), key.Inputs(changed), inputs.Redaction{}, []string{"arg TOKEN " + mac("hunter2") + " -> " + mac("hunter3")}},
		{"named now, plain in the record", same, changed, key, []string{"arg TOKEN " + mac("hunter2") + " -> " + mac("hunter3")}},
		{"recorded under another key", other.Inputs(same), changed, plain, nil},
		{"recorded without a key", none.Inputs(same), changed, plain, nil},
		{"no key now", key.Inputs(same), changed, inputs.Redaction{}, nil},
		{"legacy digest, same", legacy(same), same, inputs.Redaction{}, nil},
		{"legacy digest, changed", legacy(same), changed, inputs.Redaction{}, []string{"arg TOKEN " + legacy(same).Args["TOKEN"] + " -> " + legacy(changed).Args["TOKEN"]}},
		{"neither redacted", same, changed, inputs.Redaction{}, []string{"arg TOKEN hunter2 -> hunter3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Compare(tc.old, tc.cur, tc.red)
			got := render(r)
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("report:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			js, _ := json.Marshal(r)
			if tc.name != "neither redacted" && strings.Contains(string(js), "hunter") {
				t.Fatalf("a redacted value reached the report: %s", js)
			}
		})
	}
	// A value that only looks like a redacted one is a value.
	for v, want := range map[string]bool{
		mac("x"): true, inputs.Bare: true, legacy(same).Args["TOKEN"]: true,
		"redacted:sha256:xyz": false, inputs.KeyedPrefix + "abc:" + strings.Repeat("a", 64): false,
		mac("x")[:len(mac("x"))-1] + "g": false, strings.ToUpper(mac("x")): false,
	} {
		if isRedacted(v) != want {
			t.Errorf("isRedacted(%q) = %v", v, !want)
		}
	}
}

// TestRedactNotGuessable: what a record stores of a low-entropy value
// cannot be checked against a guess without the key: it is neither the
// value's plain SHA-256 nor the same under another key, and without a
// key nothing of the value is stored.
func TestRedactNotGuessable(t *testing.T) {
	in := &inputs.Inputs{Args: map[string]string{"TOKEN": "s3cr3t"}}
	sum := sha256.Sum256([]byte("s3cr3t"))
	plainDigest := hex.EncodeToString(sum[:])
	a := inputs.NewRedaction([]string{"TOKEN"}, "key-a").Inputs(in).Args["TOKEN"]
	b := inputs.NewRedaction([]string{"TOKEN"}, "key-b").Inputs(in).Args["TOKEN"]
	none := inputs.NewRedaction([]string{"TOKEN"}, "").Inputs(in).Args["TOKEN"]
	if strings.Contains(a, plainDigest) || a == b || strings.Contains(a, "s3cr3t") || none != "redacted" {
		t.Errorf("stored %q (key a), %q (key b), %q (no key)", a, b, none)
	}
	if in.Args["TOKEN"] != "s3cr3t" {
		t.Error("Inputs changed its argument")
	}
}

// render is a compact, stable view of a report for table tests.
func render(r *Report) []string {
	var out []string
	for _, l := range r.Dockerfile {
		out = append(out, "dockerfile "+l.Op+" "+itoa(l.Line)+" "+l.Text)
	}
	for _, c := range r.Settings {
		out = append(out, "setting "+c.Key+" "+c.Old+" -> "+c.New)
	}
	for _, c := range r.Args {
		out = append(out, "arg "+c.Key+" "+c.Old+" -> "+c.New)
	}
	for _, c := range r.Secrets {
		out = append(out, "secret "+c.Key)
	}
	for _, c := range r.Contexts {
		out = append(out, "context "+c.Key)
	}
	for _, f := range r.Files {
		out = append(out, "file "+f.Source+":"+f.Path+" "+f.Kind)
	}
	return out
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestEmpty: a report is empty only when no kind of change is in it.
func TestEmpty(t *testing.T) {
	if !(&Report{}).Empty() {
		t.Fatal("a report of nothing is not empty")
	}
	c := []Change{{Key: "k"}}
	for name, r := range map[string]*Report{
		"scheme": {Scheme: &Change{}}, "dockerfile": {DockerfileChanged: true}, "settings": {Settings: c},
		"args": {Args: c}, "labels": {Labels: c}, "secrets": {Secrets: c}, "ssh": {SSH: c},
		"contexts": {Contexts: c}, "files": {Files: []FileChange{{Path: "p"}}},
	} {
		if r.Empty() {
			t.Errorf("a report with only %s changed is empty", name)
		}
	}
}

// TestDescribe: added and removed files are described by type, mode and
// digest, or by link target.
func TestDescribe(t *testing.T) {
	d := digest.FromString("x")
	for _, tc := range []struct {
		f    inputs.File
		want string
	}{
		{inputs.File{Type: "file", Mode: "0644", Digest: d}, "file 0644 " + d.String()},
		{inputs.File{Type: "symlink", Mode: "0777", Link: "a/b"}, "symlink -> a/b"},
		{inputs.File{Type: "dir", Mode: "0755"}, "dir 0755"},
	} {
		if got := describe(tc.f); got != tc.want {
			t.Errorf("describe(%+v) = %q, want %q", tc.f, got, tc.want)
		}
	}
}

func TestFind(t *testing.T) {
	m := &Run{Services: []*Service{{Service: "a"}, {Service: "b"}}}
	if m.Find("b") != m.Services[1] || m.Find("a") != m.Services[0] || m.Find("c") != nil {
		t.Fatal("Find returns the wrong record")
	}
}

// TestParseRefusesMalformedHashes: a record whose hashes or digests are
// not what they claim (text meant to break out of a code span, a shell
// line) is refused when read, naming the field, escaped.
func TestParseRefusesMalformedHashes(t *testing.T) {
	h := strings.Repeat("a", 64)
	for name, svc := range map[string]string{
		"hash":            `"hash": "**[x](y)**` + "`" + `"`,
		"digest":          `"hash": "` + h + `", "digest": "sha256:` + h + `\nX=1"`,
		"changes.oldHash": `"hash": "` + h + `", "changes": {"service": "s", "oldHash": "` + h[:60] + `zzzz", "newHash": "` + h + `", "same": false, "dockerfileChanged": false}`,
		"inputs.hash":     `"hash": "` + h + `", "inputs": {"hash": "md5:abc", "dockerfile": {"content": "", "digest": ""}}`,
		"file digest":     `"hash": "` + h + `", "inputs": {"hash": "sha256:` + h + `", "dockerfile": {"content": "", "digest": ""}, "sources": [{"name": "context", "digest": "", "files": [{"path": "a", "type": "file", "mode": "0644", "digest": "blake3:\u001b[2J"}]}]}`,
	} {
		doc := `{"schemaVersion": 1, "services": [{"service": "s", "status": "built", ` + svc + `}]}`
		_, err := Parse([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), "malformed") || strings.ContainsAny(err.Error(), "\n\x1b") {
			t.Errorf("%s: %v", name, err)
		}
	}
	ok := `{"schemaVersion": 1, "services": [{"service": "s", "status": "built", "hash": "` + h + `", "digest": "sha256:` + h + `"}]}`
	if _, err := Parse([]byte(ok)); err != nil {
		t.Errorf("a well-formed record: %v", err)
	}
}
