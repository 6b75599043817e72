package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"github.com/bkcache/bkcache/solver/record"
)

// The JUnit XML GitLab (artifacts:reports:junit) and CircleCI
// (store_test_results) read: docs/junit.xsd is its schema.
type (
	junitSuites struct {
		XMLName xml.Name `xml:"testsuites"`
		junitCounts
		Suites []junitSuite `xml:"testsuite"`
	}
	// junitCounts are the attributes a suite and the whole report share.
	junitCounts struct {
		Name     string `xml:"name,attr"`
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Errors   int    `xml:"errors,attr"`
		Skipped  int    `xml:"skipped,attr"`
		Time     string `xml:"time,attr"`
	}
	junitSuite struct {
		junitCounts
		Timestamp  string          `xml:"timestamp,attr"`
		Properties []junitProperty `xml:"properties>property,omitempty"`
		Cases      []junitCase     `xml:"testcase"`
	}
	junitCase struct {
		Name       string          `xml:"name,attr"`
		Classname  string          `xml:"classname,attr"`
		Time       string          `xml:"time,attr"`
		File       string          `xml:"file,attr,omitempty"`
		Properties []junitProperty `xml:"properties>property,omitempty"`
		Skipped    *junitMessage   `xml:"skipped,omitempty"`
		Failure    *junitMessage   `xml:"failure,omitempty"`
		SystemOut  string          `xml:"system-out,omitempty"`
	}
	junitProperty struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	}
	junitMessage struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr,omitempty"`
		Text    string `xml:",chardata"`
	}
)

// JUnit writes the run as one JUnit test suite, one test case per
// service: built and skipped ones pass (a property says which), a failed
// one fails with its error and the end of its output, a cancelled one is
// skipped. Times are in seconds.
func JUnit(w io.Writer, r Run) error {
	m := r.Manifest
	suite := junitSuite{
		junitCounts: junitCounts{Name: "bkcache " + m.Project, Time: secs(span(m).Milliseconds())},
		Timestamp:   m.Created.UTC().Format("2006-01-02T15:04:05"),
	}
	if m.Buildkit != nil {
		suite.Properties = append(suite.Properties, junitProperty{"buildkit", m.Buildkit.Version}, junitProperty{"buildkit.address", m.Buildkit.Address})
	}
	suite.Properties = append(suite.Properties, junitProperty{"bkcache", m.Tool.Version})
	for _, s := range m.Services {
		c := testCase(m, s, r.Logs[s.Service])
		if c.File != "" {
			c.File = r.path(c.File)
		}
		suite.Tests++
		switch {
		case c.Failure != nil:
			suite.Failures++
		case c.Skipped != nil:
			suite.Skipped++
		}
		suite.Cases = append(suite.Cases, c)
	}
	all := suite.junitCounts
	all.Name = "bkcache"
	doc := junitSuites{junitCounts: all, Suites: []junitSuite{suite}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func testCase(m *record.Run, s *record.Service, log []string) junitCase {
	_, total := timing(s)
	c := junitCase{Name: s.Service, Classname: "bkcache." + m.Project, Time: secs(total)}
	c.Properties = []junitProperty{{"status", s.Status}, {"hash", s.Hash}}
	if s.Image != "" {
		c.Properties = append(c.Properties, junitProperty{"image", s.Image})
	}
	if s.Steps != nil {
		c.Properties = append(c.Properties, junitProperty{"cachedSteps", fmt.Sprint(s.Steps.Cached)}, junitProperty{"totalSteps", fmt.Sprint(s.Steps.Total)})
	}
	if first, more := reasons(s); first != nil && s.Status != "skipped" {
		c.SystemOut = "rebuilt because:\n  " + strings.Join(first, "\n  ")
		if more > 0 {
			c.SystemOut += fmt.Sprintf("\n  and %d more (bkcache explain %s)", more, s.Service)
		}
	}
	switch s.Status {
	case "failed":
		text := s.Error
		if len(log) > 0 {
			text += "\n\nlast lines of the build output:\n" + strings.Join(log, "\n")
		}
		c.Failure = &junitMessage{Message: firstLine(s.Error), Type: "BuildFailed", Text: text}
		if s.ErrorAt != nil {
			c.File = s.ErrorAt.File
		}
	case "cancelled":
		c.Skipped = &junitMessage{Message: "cancelled: " + firstLine(s.Error)}
	}
	return c
}

func secs(ms int64) string { return fmt.Sprintf("%.3f", float64(ms)/1000) }

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
