package solver

import (
	"path/filepath"
	"testing"
)

func TestParseOutput(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Output
		err  bool
	}{
		{"type=oci,dest=out.tar", Output{Type: "oci", Dest: "out.tar"}, false},
		{"type=docker,dest=/tmp/i.tar", Output{Type: "docker", Dest: "/tmp/i.tar"}, false},
		{"type=local,dest=out", Output{Type: "local", Dest: "out"}, false},
		{"type=tar,dest=fs.tar", Output{Type: "tar", Dest: "fs.tar"}, false},
		{`type=local,"dest=a,b"`, Output{Type: "local", Dest: "a,b"}, false},
		{"type=image,dest=x", Output{}, true},
		{"type=local", Output{}, true},
		{"dest=x", Output{}, true},
		{"type=local,dest=x,push=true", Output{}, true},
		{"local", Output{}, true},
	} {
		got, err := ParseOutput(tc.in)
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("ParseOutput(%q) = %+v, %v", tc.in, got, err)
		}
	}
	if got := (Output{Type: "local", Dest: "out"}).ForService("api"); got.Dest != "out/api" {
		t.Errorf("local per service: %+v", got)
	}
	if got := (Output{Type: "oci", Dest: "out"}).ForService("api"); got.Dest != "out/api.tar" {
		t.Errorf("oci per service: %+v", got)
	}
}

func FuzzParseOutput(f *testing.F) {
	f.Add("type=oci,dest=out.tar")
	f.Add(`type=local,"dest=a,b"`)
	f.Fuzz(func(t *testing.T, s string) {
		o, err := ParseOutput(s)
		if err == nil && (o.Dest == "" || o.Type == "") {
			t.Fatalf("%q accepted without type or dest: %+v", s, o)
		}
	})
}

// TestEngineNames: an image for a Docker engine is also named as docker
// compose names it (the plan's engine names); other outputs keep the one
// name.
func TestEngineNames(t *testing.T) {
	for typ, want := range map[string]string{
		"load":   "r/web:h,shop-web,web:extra",
		"docker": "r/web:h,shop-web,web:extra",
		"oci":    "r/web:h",
	} {
		e, err := Output{Type: typ, Dest: filepath.Join(t.TempDir(), "out")}.exportEntry("r/web:h", "shop-web", "web:extra")
		if err != nil {
			t.Fatal(err)
		}
		if e.Attrs["name"] != want {
			t.Errorf("%s: name %q, want %q", typ, e.Attrs["name"], want)
		}
	}
}
