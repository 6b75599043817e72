package dockerfile

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
)

// render writes every fact of an analysis the hash and the record use,
// one per line: the stages, the frontend, each source (whole or its
// patterns with where each came from), each image with its origins,
// each download, and why a FROM is undecided.
func render(a *Analysis) string {
	var b strings.Builder
	fmt.Fprintf(&b, "stages %s\n", strings.Join(a.Stages, ","))
	if a.Syntax != "" {
		fmt.Fprintf(&b, "syntax %s\n", a.Syntax)
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range a.Sources {
			if !yield(k) {
				return
			}
		}
	}) {
		u := a.Sources[name]
		if u.Whole {
			fmt.Fprintf(&b, "%s whole widened=%v: %s\n", name, u.Widened, u.Reason)
			continue
		}
		fmt.Fprintf(&b, "%s %s\n", name, strings.Join(u.Paths(), ","))
	}
	for _, im := range a.Images {
		var os []string
		for _, o := range im.Origins {
			os = append(os, fmt.Sprintf("%d", o.Line))
		}
		fmt.Fprintf(&b, "image %s <- %s\n", im.Ref, strings.Join(os, ","))
	}
	for _, d := range a.Downloads {
		fmt.Fprintf(&b, "download %s %s <- %d\n", d.URL, d.Checksum, d.Origin.Line)
	}
	if a.Undecided != "" {
		fmt.Fprintf(&b, "undecided %s\n", a.Undecided)
	}
	return b.String()
}

// TestAnalysisDetails: what a demanding reader of the record (and the
// hash) needs beyond the paths: every origin of an image once, each
// download once, the frontend, a stage's name before a context's, the
// first undecidable FROM, and values that change under one name.
func TestAnalysisDetails(t *testing.T) {
	for _, tc := range []struct {
		name, dockerfile string
		opt              Options
		want             string
	}{
		{"an image's origins, each once",
			"FROM alpine AS a\nFROM alpine AS b\nFROM scratch\nCOPY --from=a /x /\nCOPY --from=b /y /\nRUN --mount=from=golang,target=/a --mount=from=golang,target=/b true\n", Options{},
			"stages a,b,2\nimage alpine <- 1,2\nimage golang <- 6\n"},
		{"a download, once per instruction, pinned or not",
			"FROM scratch\nADD https://e.com/a https://e.com/a /d/\nADD --checksum=sha256:" + strings.Repeat("1", 64) + " https://e.com/b /b\nADD local /l\n", Options{},
			"stages 0\ncontext local\ndownload https://e.com/a  <- 2\ndownload https://e.com/b sha256:" + strings.Repeat("1", 64) + " <- 3\n"},
		{"the frontend",
			"# syntax=docker/dockerfile:1.7\nFROM scratch\nCOPY b /b\nCOPY a /a\nCOPY b /c\n", Options{},
			"stages 0\nsyntax docker/dockerfile:1.7\ncontext a,b\nimage docker/dockerfile:1.7 <- 1\n"},
		{"a stage before a context of its name",
			"FROM scratch AS src\nCOPY a /a\nFROM scratch\nCOPY --from=src b /b\nRUN --mount=type=bind,from=src,source=c,target=/c true\n", Options{Contexts: []string{"src"}, Named: []string{"src"}},
			"stages src,1\ncontext a\n"},
		{"the first undecidable FROM",
			"FROM base-$TARGETARCH AS one\nFROM base-$BUILDARCH\nCOPY --from=one /x /\n", Options{},
			"stages one,1\ncontext whole widened=true: line 1: FROM base-$TARGETARCH depends on a value only known at build time\nundecided line 1: FROM base-$TARGETARCH depends on a value only known at build time\n"},
		{"ENV set, then set from the image's env",
			"FROM golang\nENV D=a\nENV D=$GOPATH\nCOPY $D /y\n", Options{},
			"stages 0\ncontext whole widened=true: line 4: COPY $D /y uses $D, whose value is only known at build time\nimage golang <- 1\n"},
		{"ARG set, then from the image's env",
			"FROM golang\nARG A=x\nARG A=$GOPATH\nCOPY $A /y\n", Options{},
			"stages 0\ncontext whole widened=true: line 4: COPY $A /y uses $A, whose value is only known at build time\nimage golang <- 1\n"},
		{"ARG pairs decided one by one",
			"FROM golang\nARG A=$GOPATH B=b\nCOPY $B /y\n", Options{},
			"stages 0\ncontext b\nimage golang <- 1\n"},
		{"ARG without a value keeps an ENV of its name",
			"FROM scratch\nENV A=v\nARG A\nCOPY a$A /x\n", Options{},
			"stages 0\ncontext av\n"},
		{"ARG without a value, nothing else: empty",
			"FROM scratch\nARG A\nCOPY a$A /x\n", Options{},
			"stages 0\ncontext a\n"},
		{"mounts without from= read no image",
			"FROM scratch\nRUN --mount=type=cache,target=/c --mount=type=bind,source=a,target=/a true\n", Options{},
			"stages 0\ncontext a\n"},
		{"each platform from a fresh parse, each stage once",
			"FROM scratch\nARG TARGETARCH\nCOPY bin-$TARGETARCH /b\n", Options{Platforms: []string{"linux/amd64", "linux/arm64"}},
			"stages 0\ncontext bin-amd64,bin-arm64\n"},
		{"a platform that does not parse decides nothing",
			"FROM scratch\nARG TARGETARCH\nCOPY bin-$TARGETARCH /b\n", Options{Platforms: []string{"linux/amd64/v2/x"}},
			"stages 0\ncontext whole widened=true: line 3: COPY bin-$TARGETARCH /b uses $TARGETARCH, whose value is only known at build time\n"},
		{"the frontend written in full",
			"# syntax=docker.io/docker/dockerfile:1\nFROM scratch\nCOPY a /a\n", Options{},
			"stages 0\nsyntax docker.io/docker/dockerfile:1\ncontext a\nimage docker.io/docker/dockerfile:1 <- 1\n"},
		{"a context named by the ref in full shadows nothing (BuildKit looks the familiar name up)",
			"FROM docker.io/library/alpine:3.20\nCOPY --from=alpine:latest /a /\n", Options{Named: []string{"docker.io/library/alpine:3.20", "alpine:latest"}},
			"stages 0\nimage alpine:latest <- 2\nimage docker.io/library/alpine:3.20 <- 1\n"},
		{"the first undecidable variable is named",
			"FROM golang\nCOPY $GOPATH/$HOME /x\n", Options{},
			"stages 0\ncontext whole widened=true: line 2: COPY $GOPATH/$HOME /x uses $GOPATH, whose value is only known at build time\nimage golang <- 1\n"},
		{"an undecidable path after the whole context",
			"FROM golang\nCOPY . /a\nCOPY $GOPATH /b\n", Options{},
			"stages 0\ncontext whole widened=true: line 3: COPY $GOPATH /b uses $GOPATH, whose value is only known at build time\nimage golang <- 1\n"},
		{"a mount source from the image's env",
			"FROM golang\nRUN --mount=type=bind,source=$GOPATH,target=/x true\n", Options{},
			"stages 0\ncontext whole widened=true: line 2: RUN --mount=type=bind,source=$GOPATH,target=/x true uses $GOPATH, whose value is only known at build time\nimage golang <- 1\n"},
		{"an ARG's default over the global value",
			"ARG A=g\nFROM scratch\nARG A=d\nCOPY $A /x\n", Options{},
			"stages 0\ncontext d\n"},
		{"an expansion that fails only for a platform not known",
			"FROM scratch\nARG TARGETARCH\nCOPY ${TARGETARCH:?x} /d\n", Options{},
			"stages 0\ncontext whole widened=true: line 3: COPY ${TARGETARCH:?x} /d: failed to process \"${TARGETARCH:?x}\": TARGETARCH: x\n"},
		{"ADD of a path whose start is undecidable: it may be a URL",
			"FROM golang\nADD $GOPATH/x /x\n", Options{},
			"stages 0\ncontext whole widened=true: line 2: ADD $GOPATH/x /x uses $GOPATH, whose value is only known at build time\nimage golang <- 1\nundecided line 2: ADD $GOPATH/x /x may download $GOPATH/x, which depends on $GOPATH, whose value is only known at build time\n"},
		{"ADD of a local path undecidable below a directory",
			"FROM golang\nADD src/$GOOS /x\n", Options{},
			"stages 0\ncontext whole widened=true: line 2: ADD src/$GOOS /x uses $GOOS, whose value is only known at build time\nimage golang <- 1\n"},
		{"ADD of a URL undecidable in its path",
			"FROM golang\nADD https://e.com/v$GOVERSION.tgz /x\n", Options{},
			"stages 0\ncontext whole widened=true: line 2: ADD https://e.com/v$GOVERSION.tgz /x uses $GOVERSION, whose value is only known at build time\nimage golang <- 1\nundecided line 2: ADD https://e.com/v$GOVERSION.tgz /x may download https://e.com/v$GOVERSION.tgz, which depends on $GOVERSION, whose value is only known at build time\n"},
		{"ADD of an undecidable URL pinned by a checksum",
			"FROM golang\nADD --checksum=sha256:" + strings.Repeat("1", 64) + " https://e.com/v$GOVERSION.tgz /x\n", Options{},
			"stages 0\ncontext whole widened=true: line 2: ADD --checksum=sha256:" + strings.Repeat("1", 64) + " https://e.com/v$GOVERSION.tgz /x uses $GOVERSION, whose value is only known at build time\nimage golang <- 1\n"},
		{"ADD of an undecidable URL whose checksum is undecidable too",
			"FROM golang\nADD --checksum=$SUM https://e.com/v$GOVERSION.tgz /x\n", Options{},
			"stages 0\ncontext whole widened=true: line 2: ADD --checksum=$SUM https://e.com/v$GOVERSION.tgz /x uses $GOVERSION, whose value is only known at build time\nimage golang <- 1\nundecided line 2: ADD --checksum=$SUM https://e.com/v$GOVERSION.tgz /x may download https://e.com/v$GOVERSION.tgz, which depends on $GOVERSION, whose value is only known at build time\n"},
		{"ADD of a URL from an ARG with a value: a download",
			"FROM golang\nARG V=1\nADD https://e.com/v$V.tgz /x\n", Options{},
			"stages 0\nimage golang <- 1\ndownload https://e.com/v1.tgz  <- 3\n"},
		{"ADD whose undecidable expansion fails: may be a URL",
			"FROM golang\nADD ${URL:?unset} /x\n", Options{},
			"stages 0\ncontext whole widened=true: line 2: ADD ${URL:?unset} /x: failed to process \"${URL:?unset}\": URL: unset\nimage golang <- 1\nundecided line 2: ADD ${URL:?unset} /x may download ${URL:?unset}, which depends on $URL, whose value is only known at build time\n"},
		{"the first undecidable download is named, in file and in line order",
			"FROM golang\nADD $A/x https://e.com/$B /x/\nADD https://e.com/$C /y\n", Options{},
			"stages 0\ncontext whole widened=true: line 2: ADD $A/x https://e.com/$B /x/ uses $A, whose value is only known at build time\nimage golang <- 1\nundecided line 2: ADD $A/x https://e.com/$B /x/ may download $A/x, which depends on $A, whose value is only known at build time\n"},
		{"COPY of a URL is a path, not a download (BuildKit refuses it)",
			"FROM scratch\nCOPY https://e.com/a /a\n", Options{},
			"stages 0\ncontext https:/e.com/a\n"},
		{"only the dest undecidable: the download is recorded",
			"FROM golang\nADD https://e.com/a $GOPATH/\n", Options{},
			"stages 0\nimage golang <- 1\ndownload https://e.com/a  <- 2\n"},
		{"only the dest or flags undecidable: the paths, not the whole",
			"FROM golang\nCOPY a $GOPATH/\nCOPY --chown=$USER b /b\nADD --chmod=$MODE c /c\n", Options{},
			"stages 0\ncontext a,b,c\nimage golang <- 1\n"},
		{"one source undecidable, the other read",
			"FROM golang\nCOPY a $GOPATH/b /x/\n", Options{},
			"stages 0\ncontext whole widened=true: line 2: COPY a $GOPATH/b /x/ uses $GOPATH, whose value is only known at build time\nimage golang <- 1\n"},
		{"an expansion that fails only in our partial view",
			"FROM golang\nCOPY ${GOPATH:?unset} /x\n", Options{Contexts: []string{"more"}},
			"stages 0\ncontext whole widened=true: line 2: COPY ${GOPATH:?unset} /x: failed to process \"${GOPATH:?unset}\": GOPATH: unset\nmore whole widened=true: line 2: COPY ${GOPATH:?unset} /x: failed to process \"${GOPATH:?unset}\": GOPATH: unset\nimage golang <- 1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Analyze([]byte(tc.dockerfile), tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			if got := render(a); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// TestExpansionFailsAsBuildKit: an expansion that fails with everything
// it reads known (or known to be unset) fails the analysis, at its line,
// as BuildKit fails the build; one that may only fail for want of a
// base image's ENV does not (TestAnalysisDetails).
func TestExpansionFailsAsBuildKit(t *testing.T) {
	for _, df := range []string{
		"FROM scratch\nCOPY ${NOPE:?required} /x\n",
		"FROM scratch\nARG TARGETARCH\nCOPY ${TARGETARCH}${NOPE:?required} /x\n",
	} {
		_, err := Analyze([]byte(df), Options{})
		var se *SyntaxError
		if !asSyntax(err, &se) || se.Line != strings.Count(df, "\n") || !strings.Contains(err.Error(), "required") {
			t.Errorf("%q: got %v, want a syntax error at its last line naming the message", df, err)
		}
	}
	if _, err := Analyze([]byte("ARG X=1\n"), Options{}); err == nil || !strings.Contains(err.Error(), "no FROM") {
		t.Errorf("no stage: %v, want an error saying there is no FROM", err)
	}
}

// TestStageReferencesOutOfRange: a --from= index that names no earlier
// stage is not a stage (BuildKit takes it as an image name), and a
// cycle of stages ends.
func TestStageReferencesOutOfRange(t *testing.T) {
	for df, want := range map[string]string{
		"FROM scratch\nCOPY --from=-1 /a /\n":                                            "stages 0\nimage -1 <- 2\n",
		"FROM scratch\nCOPY --from=7 /a /\nFROM scratch\n":                               "stages 1\n",
		"FROM scratch AS a\nCOPY --from=1 /a /\nFROM scratch\nCOPY --from=a /b /\n":      "stages a,1\nimage 1 <- 2\n",
		"FROM scratch AS a\nCOPY --from=b /x /\nFROM scratch AS b\nCOPY --from=a /y /\n": "stages a,b\n",
	} {
		a, err := Analyze([]byte(df), Options{})
		if err != nil {
			t.Errorf("%q: %v", df, err)
			continue
		}
		if got := render(a); got != want {
			t.Errorf("%q: got\n%s\nwant\n%s", df, got, want)
		}
	}
}

func asSyntax(err error, se **SyntaxError) bool {
	s, ok := err.(*SyntaxError)
	*se = s
	return ok
}

// TestDescribeSource names sources as people read them.
func TestDescribeSource(t *testing.T) {
	if got := DescribeSource(MainContext); got != "build context" {
		t.Errorf("main: %q", got)
	}
	if got := DescribeSource("lib"); got != `additional context "lib"` {
		t.Errorf("lib: %q", got)
	}
}

// TestPaths: a whole source has no paths; others are sorted, each once.
func TestPaths(t *testing.T) {
	u := &Use{Patterns: []Pattern{{Path: "b"}, {Path: "a"}, {Path: "b"}}}
	if got := strings.Join(u.Paths(), ","); got != "a,b" {
		t.Errorf("paths %q, want a,b", got)
	}
	u.Whole = true
	if got := u.Paths(); got != nil {
		t.Errorf("whole: paths %q, want none", got)
	}
}

// TestSyntaxErrorUnwraps: callers can still match what the parser said.
func TestSyntaxErrorUnwraps(t *testing.T) {
	if err := error(&SyntaxError{Line: 3, Err: io.ErrUnexpectedEOF}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("%v does not unwrap to its cause", err)
	}
}
