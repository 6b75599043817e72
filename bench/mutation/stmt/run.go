package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// tester runs one package's tests against its mutants.
type tester struct {
	pkg    string
	base   time.Duration // the tests' time, unmutated
	e2e    bool
	e2eMap map[string]string
	schema *schema
}

// baseline runs the schema binary with no mutant on: the tests must pass,
// and their time bounds each mutant's run.
func (s *schema) baseline() (time.Duration, error) {
	start := time.Now()
	if err := s.run(context.Background(), 0); err != nil {
		return 0, fmt.Errorf("the tests fail with no mutant on: %w (run go test on the package)", err)
	}
	return time.Since(start), nil
}

// bound is how long a mutant's unit tests may run before it counts as
// killed (a mutant that loops forever is caught).
func (t tester) bound() time.Duration { return max(30*time.Second, 8*t.base) }

// trySwitched runs the schema's tests with m on, then, when they pass and
// e2e is set, the e2e tests mapped to m's file with the schema built in.
func (t tester) trySwitched(m switched) string {
	ctx, cancel := context.WithTimeout(context.Background(), t.bound())
	defer cancel()
	if t.schema.run(ctx, m.ID) != nil {
		return Killed
	}
	return t.tryE2E(m.Mutant, t.schema.overlay, mutantEnv+"="+strconv.Itoa(m.ID))
}

// tryAlone plants m by itself and runs the package's tests, then, when
// they pass and e2e is set, the e2e tests mapped to m's file.
func (t tester) tryAlone(m Mutant) string {
	overlay, cleanup, err := plant(m)
	if err != nil {
		return NoBuild
	}
	defer cleanup()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute+t.bound())
	defer cancel()
	out, err := goTest(ctx, overlay, t.pkg, "")
	switch {
	case err == nil:
	case strings.Contains(out, "[build failed]") || strings.Contains(out, "[setup failed]"):
		return NoBuild
	default:
		return Killed // a failure, or the time bound
	}
	return t.tryE2E(m, overlay)
}

// tryE2E runs the e2e tests mapped to m's function (FILE#FUNC), else to
// its file, with the mutant built in through overlay (and env), when
// e2e is set: Lived unless one fails.
func (t tester) tryE2E(m Mutant, overlay string, env ...string) string {
	re, mapped := e2eTests(t.e2eMap, m)
	if !t.e2e || !mapped {
		return Lived
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	if _, err := goTest(ctx, overlay, "./e2e", re, env...); err != nil {
		return KilledE2E
	}
	return Lived
}

// plant writes m's file, mutated, to a temporary directory and returns
// an overlay file that puts it in place of the original.
func plant(m Mutant) (overlay string, cleanup func(), err error) {
	src, err := os.ReadFile(m.File)
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "bkcache-mutant-")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	abs, err := filepath.Abs(m.File)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, filepath.Base(m.File)), m.Apply(src), 0o644)
	}
	var doc []byte
	if err == nil {
		doc, err = json.Marshal(map[string]any{"Replace": map[string]string{abs: filepath.Join(dir, filepath.Base(m.File))}})
	}
	if err == nil {
		overlay = filepath.Join(dir, "overlay.json")
		err = os.WriteFile(overlay, doc, 0o644)
	}
	if err != nil {
		cleanup()
		return "", nil, err
	}
	return overlay, cleanup, nil
}

// goTest runs go test on pkg (with -run run, if given), through the
// overlay when there is one, as CI does (CI=true: a missing requirement
// fails instead of skipping).
func goTest(ctx context.Context, overlay, pkg, run string, env ...string) (string, error) {
	args := []string{"test", "-count=1", "-failfast"}
	if run != "" {
		args = append(args, "-run", run)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	killGroup(cmd)
	cmd.Env = append(append(os.Environ(), "CI=true"), env...)
	if overlay != "" {
		cmd.Env = append(cmd.Env, "GOFLAGS=-overlay="+overlay)
	}
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	return b.String(), err
}

// report renders the results as Markdown: a score per package and the
// mutants that lived.
func report(results []result, took time.Duration, e2e bool) string {
	var b strings.Builder
	where := "unit tests"
	if e2e {
		where = "unit tests, then the mapped e2e tests"
	}
	fmt.Fprintf(&b, "Statement-level mutants (`bench/mutation/stmt`), %s, in %s. Score: killed over killed or lived; mutants that do not compile are not counted.\n\n", where, took.Round(time.Minute))
	b.WriteString("| package | killed | killed by e2e | lived | not compiling | score |\n|---|---|---|---|---|---|\n")
	by := map[string]map[string]int{}
	var pkgs, lived []string
	for _, r := range results {
		if by[r.Pkg] == nil {
			by[r.Pkg] = map[string]int{}
			pkgs = append(pkgs, r.Pkg)
		}
		by[r.Pkg][r.Outcome]++
		if r.Outcome == Lived {
			lived = append(lived, r.Mutant.String())
		}
	}
	var tk, tl int
	for _, p := range pkgs {
		n := by[p]
		k := n[Killed] + n[KilledE2E]
		tk, tl = tk+k, tl+n[Lived]
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %s |\n", strings.TrimPrefix(p, "./"), n[Killed], n[KilledE2E], n[Lived], n[NoBuild], score(k, n[Lived]))
	}
	fmt.Fprintf(&b, "| **all** | | | %d | | **%s** |\n\nMutants that lived:\n\n", tl, score(tk, tl))
	sort.Strings(lived)
	for _, l := range lived {
		fmt.Fprintf(&b, "- `%s`\n", l)
	}
	if len(lived) == 0 {
		b.WriteString("- none\n")
	}
	return b.String()
}

func score(killed, lived int) string {
	if killed+lived == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(killed)/float64(killed+lived))
}

// killGroup makes cmd's context end its whole process group: go test's
// test binary (and what that starts) with it, not go alone.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
}

// e2eTests is the -run pattern of the e2e tests mapped to m: to its
// function (FILE#FUNC), else to its file.
func e2eTests(e2eMap map[string]string, m Mutant) (string, bool) {
	if re, ok := e2eMap[filepath.Clean(m.File)+"#"+m.Func]; ok {
		return re, true
	}
	re, ok := e2eMap[filepath.Clean(m.File)]
	return re, ok
}
