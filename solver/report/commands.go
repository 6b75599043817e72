package report

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// Commands writes GitHub Actions workflow commands for the run: an
// ::error for each failed service, at its Dockerfile line when BuildKit
// named one, then a ::warning for each warning.
func Commands(w io.Writer, r Run) error {
	var b strings.Builder
	for _, s := range r.Manifest.Services {
		if s.Status == "failed" {
			props := []string{"title=" + property("bkcache: "+s.Service+" failed")}
			if s.ErrorAt != nil {
				props = append([]string{"file=" + property(r.path(s.ErrorAt.File)), fmt.Sprintf("line=%d", s.ErrorAt.Line)}, props...)
			}
			fmt.Fprintf(&b, "::error %s::%s\n", strings.Join(props, ","), data(s.Error))
		}
	}
	for _, s := range r.Manifest.Services {
		for _, w := range s.Warnings {
			fmt.Fprintf(&b, "::warning title=%s::%s\n", property("bkcache: "+s.Service), data(w))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Group and EndGroup fold a service's log lines in a GitHub log.
func Group(service string) string { return "::group::" + data(service) + "\n" }

// EndGroup ends the fold Group began.
const EndGroup = "::endgroup::\n"

// data escapes a workflow command's message, as @actions/core does.
func data(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// property escapes a workflow command's property value.
func property(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

func relTo(dir, file string) string {
	if dir == "" || !filepath.IsAbs(file) {
		return filepath.ToSlash(file)
	}
	rel, err := filepath.Rel(dir, file)
	if err != nil || strings.HasPrefix(rel, "..") {
		return filepath.ToSlash(file)
	}
	return filepath.ToSlash(rel)
}
