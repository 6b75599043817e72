package dockerfile

import (
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// summary renders an Analysis as source -> "*" (whole) or its paths.
func summary(a *Analysis) map[string]string {
	out := map[string]string{}
	for name, u := range a.Sources {
		if u.Whole {
			out[name] = "*"
		} else {
			out[name] = strings.Join(u.Paths(), ",")
		}
	}
	return out
}

func TestAnalyze(t *testing.T) {
	for _, tc := range []struct {
		name       string
		dockerfile string
		opt        Options
		want       map[string]string
		reason     string // substring of the main context's reason
	}{
		{
			name:       "copy everything",
			dockerfile: "FROM scratch\nCOPY . /app\n",
			want:       map[string]string{"context": "*"},
			reason:     "copies the whole source",
		},
		{
			name:       "files and directories",
			dockerfile: "FROM scratch\nCOPY go.mod go.sum ./\nCOPY ./src/ /app/src\nADD vendor.tar.gz /v\n",
			want:       map[string]string{"context": "go.mod,go.sum,src,vendor.tar.gz"},
		},
		{
			name:       "no local files",
			dockerfile: "FROM busybox\nRUN echo hi\nCOPY <<EOF /hello\nhi\nEOF\n",
			want:       map[string]string{},
		},
		{
			// The ARG's value is unknown, and nothing reads it: the
			// source is not widened for it.
			name:       "an ARG known only at build time, unused",
			dockerfile: "FROM golang\nARG V=$GOPATH/x\nARG W=${GOPATH:?unset}\nCOPY a /a\n",
			want:       map[string]string{"context": "a"},
		},
		{
			name:       "remote ADD is not local",
			dockerfile: "FROM scratch\nADD https://example.com/a.tgz /a\nADD http://x/y /y\n",
			want:       map[string]string{},
		},
		{
			name:       "wildcards kept as patterns",
			dockerfile: "FROM scratch\nCOPY *.json config/??.yaml /app/\n",
			want:       map[string]string{"context": "*.json,config/??.yaml"},
		},
		{
			name:       "parent escapes are clamped to the root",
			dockerfile: "FROM scratch\nCOPY ../../etc/passwd /p\n",
			want:       map[string]string{"context": "etc/passwd"},
		},
		{
			name: "unreachable stage is ignored",
			dockerfile: `FROM scratch AS docs
COPY docs/ /docs
FROM scratch AS build
COPY src/ /src
FROM scratch
COPY --from=build /src /src
COPY main.go /
`,
			want: map[string]string{"context": "main.go,src"},
		},
		{
			name: "target selects the stage",
			dockerfile: `FROM scratch AS docs
COPY docs/ /docs
FROM scratch AS app
COPY src/ /src
`,
			opt:  Options{Target: "docs"},
			want: map[string]string{"context": "docs"},
		},
		{
			name: "stage names are case-insensitive and numeric refs work",
			dockerfile: `FROM scratch AS Builder
COPY a /a
FROM scratch
COPY b /b
FROM scratch
COPY --from=builder /a /a
COPY --from=1 /b /b
`,
			want: map[string]string{"context": "a,b"},
		},
		{
			name:       "FROM a stage named in another case",
			dockerfile: "FROM scratch AS Base\nCOPY b /b\nFROM scratch AS other\nCOPY o /o\nFROM BASE\nCOPY t /t\n",
			want:       map[string]string{"context": "b,t"},
		},
		{
			name:       "target in another case",
			dockerfile: "FROM scratch AS Docs\nCOPY d /d\nFROM scratch\nCOPY x /x\n",
			opt:        Options{Target: "DOCS"},
			want:       map[string]string{"context": "d"},
		},
		{
			name:       "mount from a stage named in another case",
			dockerfile: "FROM scratch AS Tools\nCOPY t /t\nFROM busybox\nRUN --mount=type=bind,from=TOOLS,source=/t,target=/t true\n",
			want:       map[string]string{"context": "t"},
		},
		{
			name:       "stage reached only through a cache mount's from=",
			dockerfile: "FROM scratch AS seed\nCOPY s /s\nFROM scratch AS other\nCOPY o /o\nFROM busybox\nRUN --mount=type=cache,target=/c,from=seed,source=/ true\n",
			want:       map[string]string{"context": "s"},
		},
		{
			name:       "ENV from an image's variable is undecidable",
			dockerfile: "FROM golang:1.26\nENV D=$GOPATH/src\nCOPY $D /x\n",
			want:       map[string]string{"context": "*"},
			reason:     "$D",
		},
		{
			name:       "ENV from an image's variable, through a stage",
			dockerfile: "FROM golang:1.26 AS b\nENV D=$GOPATH\nFROM b\nCOPY $D /x\n",
			want:       map[string]string{"context": "*"},
			reason:     "$D",
		},
		{
			name:       "ENV from an unset variable in scratch is empty",
			dockerfile: "FROM scratch\nENV D=$NOPE/x\nCOPY $D /y\n",
			want:       map[string]string{"context": "x"},
		},
		{
			name:       "ARG with a default after FROM an image overrides its ENV",
			dockerfile: "FROM golang:1.26\nARG DIR=app\nCOPY $DIR /x\n",
			want:       map[string]string{"context": "app"},
		},
		{
			name:       "ARG without a value after FROM an image may be its ENV",
			dockerfile: "FROM golang:1.26\nARG DIR\nCOPY $DIR/x /x\n",
			want:       map[string]string{"context": "*"},
			reason:     "$DIR",
		},
		{
			name:       "ARG without a value after FROM an image, given as a build arg",
			dockerfile: "FROM golang:1.26\nARG DIR\nCOPY $DIR/x /x\n",
			opt:        Options{BuildArgs: map[string]string{"DIR": "d"}},
			want:       map[string]string{"context": "d/x"},
		},
		{
			name:       "ARG default from an image's variable",
			dockerfile: "FROM golang:1.26\nARG DIR=$GOPATH\nCOPY $DIR /x\n",
			want:       map[string]string{"context": "*"},
			reason:     "$DIR",
		},
		{
			name:       "FROM base-${TARGETARCH} without platforms",
			dockerfile: "ARG TARGETARCH\nFROM scratch AS base-amd64\nCOPY a /a\nFROM scratch AS base-arm64\nCOPY b /b\nFROM base-${TARGETARCH}\nCOPY c /c\n",
			want:       map[string]string{"context": "*"},
			reason:     "TARGETARCH",
		},
		{
			name:       "FROM base-${TARGETARCH} for one platform",
			dockerfile: "ARG TARGETARCH\nFROM scratch AS base-amd64\nCOPY a /a\nFROM scratch AS base-arm64\nCOPY b /b\nFROM base-${TARGETARCH}\nCOPY c /c\n",
			opt:        Options{Platforms: []string{"linux/amd64"}},
			want:       map[string]string{"context": "a,c"},
		},
		{
			name:       "FROM base-${TARGETARCH} for two platforms",
			dockerfile: "ARG TARGETARCH\nFROM scratch AS base-amd64\nCOPY a /a\nFROM scratch AS base-arm64\nCOPY b /b\nFROM scratch AS base-s390x\nCOPY s /s\nFROM base-${TARGETARCH}\nCOPY c /c\n",
			opt:        Options{Platforms: []string{"linux/amd64", "linux/arm64"}},
			want:       map[string]string{"context": "a,b,c"},
		},
		{
			name:       "a stage named like its base is not its own base",
			dockerfile: "FROM scratch AS scratch\nARG X\nCOPY a$X /a\n",
			want:       map[string]string{"context": "a"},
		},
		{
			name:       "a numeric ref to the first stage",
			dockerfile: "FROM scratch\nCOPY a /a\nFROM scratch\nCOPY b /b\nFROM scratch\nCOPY --from=0 /a /a\n",
			want:       map[string]string{"context": "a"},
		},
		{
			name:       "FROM undecidable in a single stage",
			dockerfile: "FROM base-${TARGETARCH}\nCOPY c /c\n",
			want:       map[string]string{"context": "*"},
			reason:     "FROM base-${TARGETARCH}",
		},
		{
			name:       "the first reason to read everything is the one given",
			dockerfile: "# syntax=example.com/my/frontend:1\nFROM golang:1.26\nCOPY $GOPATH /x\nCOPY . /y\n",
			want:       map[string]string{"context": "*"},
			reason:     "custom frontend",
		},
		{
			name:       "a platform of one part leaves TARGETARCH to the daemon",
			dockerfile: "FROM scratch\nARG TARGETARCH\nCOPY bin/$TARGETARCH/app /app\n",
			opt:        Options{Platforms: []string{"linux"}},
			want:       map[string]string{"context": "*"},
			reason:     "$TARGETARCH",
		},
		{
			name:       "platforms are normalized as BuildKit does",
			dockerfile: "FROM scratch\nARG TARGETPLATFORM TARGETARCH TARGETVARIANT\nCOPY bin/$TARGETARCH$TARGETVARIANT /app\nCOPY p/$TARGETPLATFORM /p\n",
			opt:        Options{Platforms: []string{"linux/arm", "linux/arm64", "Linux/x86_64"}},
			want:       map[string]string{"context": "bin/amd64,bin/arm64,bin/armv7,p/linux/amd64,p/linux/arm/v7,p/linux/arm64"},
		},
		{
			name:       "base stage chain",
			dockerfile: "FROM scratch AS base\nCOPY base.txt /\nFROM base AS mid\nCOPY mid.txt /\nFROM mid\nCOPY top.txt /\n",
			want:       map[string]string{"context": "base.txt,mid.txt,top.txt"},
		},
		{
			name:       "ARG default",
			dockerfile: "FROM scratch\nARG DIR=app\nCOPY ${DIR}/ /x\n",
			want:       map[string]string{"context": "app"},
		},
		{
			name:       "build arg overrides default",
			dockerfile: "FROM scratch\nARG DIR=app\nCOPY $DIR/ /x\n",
			opt:        Options{BuildArgs: map[string]string{"DIR": "other"}},
			want:       map[string]string{"context": "other"},
		},
		{
			name:       "global ARG inherited by a stage ARG",
			dockerfile: "ARG V=1\nFROM scratch\nARG V\nCOPY v$V /x\n",
			want:       map[string]string{"context": "v1"},
		},
		{
			name:       "global ARG not redeclared is not visible",
			dockerfile: "ARG V=1\nFROM scratch\nCOPY v${V}x /x\n",
			want:       map[string]string{"context": "vx"},
		},
		{
			name:       "ENV in a scratch stage",
			dockerfile: "FROM scratch\nENV D=dist\nCOPY ${D:-none}/ /x\n",
			want:       map[string]string{"context": "dist"},
		},
		{
			name:       "ENV inherited through a stage",
			dockerfile: "FROM scratch AS b\nENV D=dist\nFROM b\nCOPY $D /x\n",
			want:       map[string]string{"context": "dist"},
		},
		{
			name:       "variable from an image ENV is undecidable",
			dockerfile: "FROM golang:1.26\nCOPY $GOPATH/src /x\nCOPY main.go /\n",
			want:       map[string]string{"context": "*"},
			reason:     "$GOPATH",
		},
		{
			name:       "ENV set in an image stage is known",
			dockerfile: "FROM golang:1.26\nENV APP=/srv\nCOPY $APP/x /x\n",
			want:       map[string]string{"context": "srv/x"},
		},
		{
			name:       "TARGETARCH per requested platform",
			dockerfile: "FROM scratch\nARG TARGETARCH\nCOPY bin/$TARGETARCH/app /app\n",
			opt:        Options{Platforms: []string{"linux/amd64", "linux/arm64"}},
			want:       map[string]string{"context": "bin/amd64/app,bin/arm64/app"},
		},
		{
			name:       "TARGETARCH without platforms is undecidable",
			dockerfile: "FROM scratch\nARG TARGETARCH\nCOPY bin/$TARGETARCH/app /app\n",
			want:       map[string]string{"context": "*"},
			reason:     "$TARGETARCH",
		},
		{
			name:       "BUILDPLATFORM is never known",
			dockerfile: "FROM scratch\nARG BUILDARCH\nCOPY tools/$BUILDARCH /t\n",
			opt:        Options{Platforms: []string{"linux/amd64"}},
			want:       map[string]string{"context": "*"},
		},
		{
			name: "RUN bind mounts",
			dockerfile: `FROM busybox
RUN --mount=type=bind,source=pkg,target=/pkg --mount=type=cache,target=/root/.cache --mount=type=secret,id=tok --mount=type=tmpfs,target=/t true
`,
			want: map[string]string{"context": "pkg"},
		},
		{
			name:       "RUN bind mount without source is everything",
			dockerfile: "FROM busybox\nRUN --mount=type=bind,target=/src make\n",
			want:       map[string]string{"context": "*"},
		},
		{
			name:       "RUN bind mount from a stage is not local",
			dockerfile: "FROM scratch AS s\nCOPY a /a\nFROM busybox\nRUN --mount=type=bind,from=s,source=/a,target=/a cat /a\n",
			want:       map[string]string{"context": "a"},
		},
		{
			name:       "named local context",
			dockerfile: "FROM scratch\nCOPY --from=shared lib/ /lib\nRUN --mount=type=bind,from=shared,source=tools,target=/t true\n",
			opt:        Options{Contexts: []string{"shared"}},
			want:       map[string]string{"shared": "lib,tools"},
		},
		{
			name:       "FROM a named local context reads all of it",
			dockerfile: "FROM base\nCOPY x /\n",
			opt:        Options{Contexts: []string{"base"}},
			want:       map[string]string{"base": "*", "context": "x"},
		},
		{
			name:       "COPY --from an image is not local",
			dockerfile: "FROM scratch\nCOPY --from=busybox:latest /bin/busybox /bin/\n",
			want:       map[string]string{},
		},
		{
			name:       "FROM through a global ARG",
			dockerfile: "ARG BASE=build\nFROM scratch AS build\nCOPY b /b\nFROM scratch AS other\nCOPY o /o\nFROM ${BASE}\nCOPY t /t\n",
			want:       map[string]string{"context": "b,t"},
		},
		{
			name:       "ONBUILD of an in-file base stage",
			dockerfile: "FROM scratch AS base\nONBUILD COPY . /app\nFROM base\n",
			want:       map[string]string{"context": "*"},
		},
		{
			name:       "custom frontend",
			dockerfile: "# syntax=example.com/my/frontend:1\nFROM scratch\nCOPY a /a\n",
			want:       map[string]string{"context": "*"},
			reason:     "custom frontend",
		},
		{
			name:       "official frontend is modelled",
			dockerfile: "# syntax=docker/dockerfile:1.7\nFROM scratch\nCOPY a /a\n",
			want:       map[string]string{"context": "a"},
		},
		{
			name:       "escape directive",
			dockerfile: "# escape=`\nFROM scratch\nCOPY a `\n  b /dst/\n",
			want:       map[string]string{"context": "a,b"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Analyze([]byte(tc.dockerfile), tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			got := summary(a)
			if !maps.Equal(got, tc.want) {
				t.Fatalf("sources = %v, want %v", got, tc.want)
			}
			if tc.reason != "" {
				if r := a.Sources[MainContext].Reason; !strings.Contains(r, tc.reason) {
					t.Fatalf("reason %q does not mention %q", r, tc.reason)
				}
			}
		})
	}
}

func TestOrigins(t *testing.T) {
	a, err := Analyze([]byte("FROM scratch AS build\nCOPY src/ /src\nFROM scratch\nCOPY --from=build /src /\nCOPY main.go /\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := a.Sources[MainContext].Patterns
	want := []Pattern{
		{Path: "main.go", Origin: Origin{Stage: "1", Line: 5, Instruction: "COPY main.go /"}},
		{Path: "src", Origin: Origin{Stage: "build", Line: 2, Instruction: "COPY src/ /src"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("patterns = %+v\nwant %+v", got, want)
	}
	if !slices.Equal(a.Stages, []string{"build", "1"}) || a.Target != "1" {
		t.Fatalf("stages = %v target = %q", a.Stages, a.Target)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name, dockerfile string
		opt              Options
		want             string
		line             int
	}{
		{"unknown target", "FROM scratch AS a\n", Options{Target: "b"}, `target stage "b" not found`, 0},
		{"no instructions", "# just a comment\n", Options{}, "no instructions", 0},
		{"instruction before FROM", "COPY a /a\nFROM scratch\n", Options{}, "", 1},
		{"bad flag", "FROM scratch\nCOPY --nope a /a\n", Options{}, "nope", 2},
		{"bad mount", "FROM scratch\nRUN --mount=type=wat,target=/x true\n", Options{}, "wat", 2},
		{"empty", "", Options{}, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Analyze([]byte(tc.dockerfile), tc.opt)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
			var se *SyntaxError
			if tc.line > 0 && (!errors.As(err, &se) || se.Line != tc.line) {
				t.Fatalf("error %v: want line %d", err, tc.line)
			}
		})
	}
}

// TestErrorLines: an error with a line says so first; one without does
// not invent line 0, nor does a location error that carries none.
func TestErrorLines(t *testing.T) {
	for _, tc := range []struct {
		err  *SyntaxError
		want string
	}{
		{&SyntaxError{Line: 3, Err: errors.New("x")}, "line 3: x"},
		{&SyntaxError{Line: 1, Err: errors.New("x")}, "line 1: x"},
		{&SyntaxError{Err: errors.New("x")}, "x"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	for _, le := range []*parser.LocationError{{}, {Locations: [][]parser.Range{{}}}} {
		var se *SyntaxError
		if err := syntaxErr(le); !errors.As(err, &se) || se.Line != 0 {
			t.Errorf("syntaxErr(%+v) = %v", le, err)
		}
	}
}

func FuzzAnalyze(f *testing.F) {
	f.Add("FROM scratch\nCOPY . /\n", "")
	f.Add("ARG A=x\nFROM scratch AS s\nCOPY $A /\nFROM s\nRUN --mount=type=bind,source=a,target=/a true\n", "s")
	f.Add("FROM ${X}\nONBUILD COPY a b\n", "")
	f.Fuzz(func(t *testing.T, df, target string) {
		a, err := Analyze([]byte(df), Options{Target: target, Contexts: []string{"c"}})
		if err != nil {
			return
		}
		for name, u := range a.Sources {
			for _, p := range u.Patterns {
				if strings.HasPrefix(p.Path, "/") || strings.HasPrefix(p.Path, "../") || p.Path == ".." {
					t.Fatalf("source %s: pattern %q escapes the source root", name, p.Path)
				}
			}
		}
	})
}

// TestSyntaxErrorExcerpt: what the parser quotes of a file that is not a
// Dockerfile (here, an environment block) reaches the error escaped and
// cut short.
func TestSyntaxErrorExcerpt(t *testing.T) {
	env := "PATH=/usr/bin\x00HOME=/root\x00\x1b]0;pwned\x07" + strings.Repeat("AWS_SECRET_ACCESS_KEY=SUPERSECRET123\x00", 20)
	_, err := Analyze([]byte(env+"\nFROM scratch\n"), Options{})
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\x00\x1b\x07") || strings.Count(msg, "SUPERSECRET123") > 1 || len([]rune(msg)) > 140 {
		t.Errorf("error echoes the file: %q", msg)
	}
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 10, "abc"},
		{"a\x1b[31mb", 10, `a\x1b[31mb`},
		{"a\nb", 10, `a\nb`},
		{"héllo", 10, "héllo"},
		{"abcdef", 3, "abc…"},
	} {
		if got := Excerpt(tc.s, tc.n); got != tc.want {
			t.Errorf("Excerpt(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}
