package report

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode"

	"github.com/bkcache/bkcache/solver/record"
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
		fmt.Fprintf(&b, "| %s | %s %s | %s | %s | %s | %s |\n",
			md(s.Service), statusIcon[s.Status], md(s.Status), code(Short(s.Hash)), steps(s), durationOf(s, seconds), md(s.Node))
	}
	whyRebuilt(&b, m)
	stepsThatRan(&b, m)
	failures(&b, r)
	warnings(&b, m)
	b.WriteString("\n### Timeline\n\n```mermaid\n")
	gantt(&b, m)
	b.WriteString("```\n")
	if lines := StepTimes(stepLists(m)...).Lines(); len(lines) > 0 {
		fmt.Fprintf(&b, "\n%s\n", md(strings.Join(lines, " ")))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// durationOf is s's duration cell, each time formatted by format.
func durationOf(s *record.Service, format func(int64) string) string {
	t := s.Timing
	if t == nil {
		return format(0)
	}
	return DurationCell(t.TotalMs, t.ExportMs, t.PushMs, t.CacheExportMs, format, format)
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

func whyRebuilt(b *strings.Builder, m *record.Run) {
	head := heading(b, "Why they rebuilt")
	for _, s := range m.Services {
		first, more := reasons(s)
		if first == nil || s.Status == "skipped" {
			continue
		}
		head()
		fmt.Fprintf(b, "- **%s** (%s → %s):", md(s.Service), code(Short(s.Changes.OldHash)), code(Short(s.Changes.NewHash)))
		for _, l := range first {
			fmt.Fprintf(b, "\n  - %s", md(l))
		}
		if more > 0 {
			fmt.Fprintf(b, "\n  - and %d more: %s", more, code("bkcache explain "+s.Service))
		}
		b.WriteString("\n")
	}
}

// stepsThatRan lists, per built service, the steps that ran and why.
func stepsThatRan(b *strings.Builder, m *record.Run) {
	head := heading(b, "Steps that ran")
	for _, s := range m.Services {
		if s.Steps == nil || s.Status != "built" {
			continue
		}
		lines := StepLines(s.Steps.List, code, md)
		if len(lines) == 0 {
			continue
		}
		head()
		fmt.Fprintf(b, "- **%s**:", md(s.Service))
		for _, l := range lines {
			fmt.Fprintf(b, "\n  - %s", l)
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
			at = " at " + code(fmt.Sprintf("%s:%d", r.path(s.ErrorAt.File), s.ErrorAt.Line))
		}
		fmt.Fprintf(b, "**%s**%s:\n\n```text\n%s\n```\n", md(s.Service), at, strings.ReplaceAll(s.Error, "```", "'''"))
	}
}

func warnings(b *strings.Builder, m *record.Run) {
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
func gantt(b *strings.Builder, m *record.Run) {
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

// mermaidText keeps a task name from ending the task, or the fence: no
// colon, hash, semicolon or backtick, which Mermaid's gantt syntax or
// Markdown read as their own, and no control character.
func mermaidText(s string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune(":#;`", r) || unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// code writes s as a Markdown code span. Inside one nothing is escaped,
// so a backtick, a newline or a pipe (which ends a table cell even in a
// code span) would let text out of it: they become spaces, as do
// control characters.
func code(s string) string {
	return "`" + strings.Map(func(r rune) rune {
		if r == '`' || r == '|' || unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s) + "`"
}

var mdSpecial = regexp.MustCompile("[\\\\`*_{}\\[\\]<>|#]")

// md escapes text for a Markdown table cell or list item; line breaks
// and other control characters become spaces.
func md(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return mdSpecial.ReplaceAllStringFunc(s, func(c string) string { return "\\" + c })
}
