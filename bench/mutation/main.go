// Command mutation turns go-gremlins' JSON results into the Markdown that
// docs/testing.md shows: a score per package and every mutant that lived.
// bench/mutation.sh runs it; see there.
//
//	go run ./bench/mutation -minutes M -commit C [-w docs/testing.md] PKG=FILE.json...
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path"
	"sort"
	"strings"
)

type result struct {
	Files []struct {
		FileName  string `json:"file_name"`
		Mutations []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
			Line   int    `json:"line"`
			Column int    `json:"column"`
		} `json:"mutations"`
	} `json:"files"`
}

const (
	begin = "<!-- mutation results: written by bench/mutation.sh -->"
	end   = "<!-- end of mutation results -->"
)

func main() {
	minutes := flag.Int("minutes", 0, "how long the run took")
	commit := flag.String("commit", "", "the commit measured")
	write := flag.String("w", "", "replace the results block of this Markdown file")
	flag.Parse()
	results := map[string][]byte{}
	var pkgs []string
	for _, arg := range flag.Args() {
		pkg, file, ok := strings.Cut(arg, "=")
		if !ok {
			log.Fatalf("want PKG=FILE.json, got %q", arg)
		}
		data, err := os.ReadFile(file)
		if err != nil {
			log.Fatal(err)
		}
		results[pkg] = data
		pkgs = append(pkgs, pkg)
	}
	text, err := report(*commit, *minutes, pkgs, results)
	if err != nil {
		log.Fatal(err)
	}
	os.Stdout.WriteString(text)
	if *write != "" {
		if err := replaceBlock(*write, text); err != nil {
			log.Fatal(err)
		}
	}
}

// report renders the results of pkgs (gremlins' JSON, by package) as
// Markdown: a table of scores and the mutants that lived.
func report(commit string, minutes int, pkgs []string, results map[string][]byte) (string, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "At %s, in %d minutes on this machine (`bench/mutation.sh`). Score: mutants killed (a test failed or timed out) over those killed or lived; not-covered mutants are in no test's reach and listed by gremlins, not here.\n\n", commit, minutes)
	b.WriteString("| package | killed | timed out | lived | not covered | score |\n|---|---|---|---|---|---|\n")
	var lived []string
	var tk, tl int
	for _, pkg := range pkgs {
		var r result
		if err := json.Unmarshal(results[pkg], &r); err != nil {
			return "", fmt.Errorf("%s: %v", pkg, err)
		}
		n := map[string]int{}
		for _, f := range r.Files {
			for _, m := range f.Mutations {
				n[m.Status]++
				if m.Status == "LIVED" {
					lived = append(lived, fmt.Sprintf("%s:%d:%d %s", path.Join(pkg, f.FileName), m.Line, m.Column, m.Type))
				}
			}
		}
		k := n["KILLED"] + n["TIMED OUT"]
		tk, tl = tk+k, tl+n["LIVED"]
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %s |\n", pkg, n["KILLED"], n["TIMED OUT"], n["LIVED"], n["NOT COVERED"], score(k, n["LIVED"]))
	}
	fmt.Fprintf(&b, "| **all** | | | %d | | **%s** |\n", tl, score(tk, tl))
	sort.Strings(lived)
	b.WriteString("\nMutants that lived:\n\n")
	for _, l := range lived {
		fmt.Fprintf(&b, "- `%s`\n", l)
	}
	if len(lived) == 0 {
		b.WriteString("- none\n")
	}
	return b.String(), nil
}

func score(killed, lived int) string {
	if killed+lived == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(killed)/float64(killed+lived))
}

// replaceBlock puts text between the results markers of the file.
func replaceBlock(file, text string) error {
	doc, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	s := string(doc)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %q ... %q block", file, begin, end)
	}
	s = s[:i+len(begin)] + "\n" + text + s[j:]
	return os.WriteFile(file, []byte(s), 0o644)
}
