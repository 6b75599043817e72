// Command stmt plants statement-level bugs, one at a time, in the code
// where a bug means a stale image or a lost one, and counts those the
// tests catch: first the unit tests of the mutant's package; for a
// mutant they let live, the e2e tests mapped to its file (e2e.map),
// against the real binary built with the mutant. See mutants.go for the
// kinds. Nothing in the tree is written: each mutant reaches the go
// command as an -overlay (through GOFLAGS, so that the e2e sandbox's own
// build of the binary carries it too).
//
//	go run ./bench/mutation/stmt [-workers 2] [-e2e] [-o FILE.md] TARGET...
//
// A TARGET is a package directory (./solver/prune) or one file of one
// (./solver/publish.go).
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// aloneOnly plants every mutant alone, as before the schemata.
var aloneOnly bool

// only, when not nil, holds the mutants to test (as Mutant.String
// prints them); the others are left out.
var only map[string]bool

func main() {
	workers := flag.Int("workers", 2, "mutants tested at once")
	e2e := flag.Bool("e2e", false, "run the mapped e2e tests against each mutant the unit tests let live (needs the e2e sandbox: root, runc)")
	out := flag.String("o", "", "also write the report to this file")
	flag.BoolVar(&aloneOnly, "alone", false, "plant every mutant alone (slow): to check the schemata against")
	mapFile := flag.String("map", "bench/mutation/stmt/e2e.map", "which e2e tests cover which file")
	onlyFile := flag.String("only", "", "test only the mutants this file lists, one per line as the log prints them after the outcome (the survivors of an earlier run: grep ' lived ' LOG | cut -d' ' -f4-)")
	flag.Parse()
	if flag.NArg() == 0 {
		log.Fatal("usage: stmt [-workers N] [-e2e] [-o FILE.md] PKG-DIR|FILE.go ...")
	}
	e2eMap, err := readMap(*mapFile)
	if err != nil {
		log.Fatal(err)
	}
	if *onlyFile != "" {
		if only, err = readOnly(*onlyFile); err != nil {
			log.Fatal(err)
		}
	}
	start := time.Now()
	var results []result
	for _, t := range flag.Args() {
		rs, err := runTarget(t, *workers, *e2e, e2eMap)
		if err != nil {
			log.Fatal(err)
		}
		results = append(results, rs...)
	}
	text := report(results, time.Since(start), *e2e)
	os.Stdout.WriteString(text)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(text), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// Outcomes of a mutant.
const (
	Killed    = "killed"     // a unit test failed (or timed out)
	KilledE2E = "killed-e2e" // only a mapped e2e test failed
	Lived     = "lived"
	NoBuild   = "no-build" // the mutant does not compile: not a bug anyone ships
)

type result struct {
	Mutant
	Pkg, Outcome string
}

// runTarget tests every mutant of a package directory or file: those
// that can be switched in one schema binary (schema.go), then the rest,
// each planted alone.
func runTarget(target string, workers int, e2e bool, e2eMap map[string]string) ([]result, error) {
	pkg, files, err := targetFiles(target)
	if err != nil {
		return nil, err
	}
	var ms []Mutant
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		m, err := Generate(f, src)
		if err != nil {
			return nil, err
		}
		for _, m := range m {
			if only == nil || only[m.String()] {
				ms = append(ms, m)
			}
		}
	}
	var noBuild []Mutant
	if !aloneOnly {
		if ms, noBuild, err = splitCompiling(pkg, ms); err != nil {
			return nil, err
		}
	}
	s, err := buildSchema(pkg, files, ms)
	if err != nil {
		return nil, err
	}
	defer s.cleanup()
	if aloneOnly {
		s.slow, s.on = ms, nil
	}
	base, err := s.baseline()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pkg, err)
	}
	log.Printf("%s: %d mutants (%d switched, %d planted alone, %d not compiling), its tests take %s", pkg, len(ms)+len(noBuild), len(s.on), len(s.slow), len(noBuild), base.Round(time.Millisecond))
	t := tester{pkg: pkg, base: base, e2e: e2e, e2eMap: e2eMap, schema: s}
	jobs := make([]func() result, 0, len(ms)+len(noBuild))
	for _, m := range noBuild {
		jobs = append(jobs, func() result { return result{Mutant: m, Pkg: pkg, Outcome: NoBuild} })
	}
	for _, m := range s.on {
		jobs = append(jobs, func() result { return result{Mutant: m.Mutant, Pkg: pkg, Outcome: t.trySwitched(m)} })
	}
	for _, m := range s.slow {
		jobs = append(jobs, func() result { return result{Mutant: m, Pkg: pkg, Outcome: t.tryAlone(m)} })
	}
	results := make([]result, len(jobs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, workers)
	for i, job := range jobs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] = job()
			log.Printf("%s %s", results[i].Outcome, results[i].Mutant)
		})
	}
	wg.Wait()
	return results, nil
}

// targetFiles returns the package of target and its files to mutate:
// every non-test Go file of a directory, or the one file named.
func targetFiles(target string) (string, []string, error) {
	st, err := os.Stat(target)
	if err != nil {
		return "", nil, err
	}
	if !st.IsDir() {
		return "./" + filepath.Clean(filepath.Dir(target)), []string{filepath.Clean(target)}, nil
	}
	all, err := filepath.Glob(filepath.Join(target, "*.go"))
	if err != nil {
		return "", nil, err
	}
	var files []string
	for _, f := range all {
		if !strings.HasSuffix(f, "_test.go") && !strings.HasSuffix(f, "_other.go") && !strings.HasSuffix(f, "_windows.go") {
			files = append(files, f)
		}
	}
	sort.Strings(files)
	return "./" + filepath.Clean(target), files, nil
}

// readMap reads lines of FILE REGEXP or FILE#FUNC REGEXP: the e2e tests
// (a -run pattern) that reach the code of FILE, or of its function FUNC
// (a mutant in FUNC runs those instead). Blank lines and # comments are
// skipped.
func readMap(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for i, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f, re, ok := strings.Cut(l, " ")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want FILE REGEXP", path, i+1)
		}
		file, fn, _ := strings.Cut(f, "#")
		key := filepath.Clean(file)
		if fn != "" {
			key += "#" + fn
		}
		out[key] = strings.TrimSpace(re)
	}
	return out, nil
}

// readOnly reads the list of mutants -only names.
func readOnly(path string) (map[string]bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			set[l] = true
		}
	}
	return set, nil
}
