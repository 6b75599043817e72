package report

import (
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/bkcache/bkcache/solver/manifest"
)

// Summary writes the run as Markdown for a CI job page (GitHub's
// $GITHUB_STEP_SUMMARY): a table of the services, why each rebuilt
// service rebuilt, failures and warnings, and a Mermaid gantt chart of
// the run, which GitHub draws.
func Summary(w io.Writer, r Run) error {
	m := r.Manifest
	var b strings.Builder
	fmt.Fprintf(&b, "## bkcache: %s\n\n", md(m.Project))
	fmt.Fprintf(&b, "%d services: %s, in %s.\n\n", len(m.Services), counts(m), seconds(span(m).Milliseconds()))
	b.WriteString("| service | status | hash | cached steps | duration | node |\n|---|---|---|---|---|---|\n")
	for _, s := range m.Services {
		_, total := timing(s)
		fmt.Fprintf(&b, "| %s | %s %s | `%s` | %s | %s | %s |\n",
			md(s.Service), statusIcon[s.Status], s.Status, Short(s.Hash), steps(s), seconds(total), md(s.Node))
	}
	whyRebuilt(&b, m)
	failures(&b, r)
	warnings(&b, m)
	b.WriteString("\n### Timeline\n\n```mermaid\n")
	gantt(&b, m)
	b.WriteString("```\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// heading returns a func that writes the section title the first time
// it is called: a section with nothing in it has no title.
func heading(b *strings.Builder, title string) func() {
	done := false
	return func() {
		if !done {
			fmt.Fprintf(b, "\n### %s\n\n", title)
			done = true
		}
	}
}

func whyRebuilt(b *strings.Builder, m *manifest.Manifest) {
	head := heading(b, "Why they rebuilt")
	for _, s := range m.Services {
		first, more := reasons(s)
		if first == nil || s.Status == "skipped" {
			continue
		}
		head()
		fmt.Fprintf(b, "- **%s** (`%s` → `%s`):", md(s.Service), Short(s.Changes.OldHash), Short(s.Changes.NewHash))
		for _, l := range first {
			fmt.Fprintf(b, "\n  - %s", md(l))
		}
		if more > 0 {
			fmt.Fprintf(b, "\n  - and %d more: `bkcache explain %s`", more, s.Service)
		}
		b.WriteString("\n")
	}
}

func failures(b *strings.Builder, r Run) {
	head := heading(b, "Failures")
	for _, s := range r.Manifest.Services {
		if s.Status != "failed" {
			continue
		}
		head()
		at := ""
		if s.ErrorAt != nil {
			at = fmt.Sprintf(" at `%s:%d`", r.path(s.ErrorAt.File), s.ErrorAt.Line)
		}
		fmt.Fprintf(b, "**%s**%s:\n\n```text\n%s\n```\n", md(s.Service), at, strings.ReplaceAll(s.Error, "```", "'''"))
	}
}

func warnings(b *strings.Builder, m *manifest.Manifest) {
	head := heading(b, "Warnings")
	for _, s := range m.Services {
		for _, w := range s.Warnings {
			head()
			fmt.Fprintf(b, "- **%s**: %s\n", md(s.Service), md(w))
		}
	}
}

// gantt draws each service from its start to its end (skipped ones, which
// take no time worth a bar, as milestones), in milliseconds after the
// run's start.
func gantt(b *strings.Builder, m *manifest.Manifest) {
	b.WriteString("gantt\n    dateFormat x\n    axisFormat %M:%S\n    section services\n")
	tags := map[string]string{"built": "done, ", "failed": "crit, ", "cancelled": "", "skipped": "milestone, ", "hashed": "milestone, "}
	for i, s := range byStart(m) {
		start, total := timing(s)
		end := start + total
		if s.Status == "skipped" || s.Status == "hashed" {
			end = start
		}
		fmt.Fprintf(b, "    %s (%s) :%ss%d, %d, %d\n", mermaidText(s.Service), s.Status, tags[s.Status], i, start, end)
	}
}

// mermaidText keeps a task name from ending the task: no colon, hash or
// semicolon, which Mermaid's gantt syntax reads as its own.
func mermaidText(s string) string {
	return strings.NewReplacer(":", " ", "#", " ", ";", " ", "\n", " ").Replace(s)
}

var mdSpecial = regexp.MustCompile("[\\\\`*_{}\\[\\]<>|#]")

// md escapes text for a Markdown table cell or list item.
func md(s string) string {
	return mdSpecial.ReplaceAllStringFunc(strings.ReplaceAll(s, "\n", " "), func(c string) string { return "\\" + c })
}
