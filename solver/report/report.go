// Package report renders a run where CI users look for it: a Markdown
// job summary (GitHub's), workflow commands (annotations and log
// groups), a JUnit XML test report (GitLab, CircleCI), and one
// self-contained HTML page with the run's timeline. Every report is made
// from the run's cache manifest, which already leaves out secret values
// and credentials, and from the end of each failed service's output.
package report

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bkcache/bkcache/solver/record"
)

// Run is what the reports show of one run.
type Run struct {
	Manifest *record.Run
	// Logs are the last lines of each failed service's build output, by
	// service; the JUnit report carries them.
	Logs map[string][]string
	// Dir is the directory paths are shown relative to, when under it:
	// the job's working directory, which GitHub resolves annotations'
	// files against.
	Dir string
}

// path is file as the reports show it.
func (r Run) path(file string) string { return relTo(r.Dir, file) }

// MaxReasons is how many reasons a summary lists per rebuilt service.
const MaxReasons = 5

// status words as the reports show them.
var statusIcon = map[string]string{
	"built": "🔨", "skipped": "⏭️", "failed": "❌", "cancelled": "🚫", "hashed": "#️⃣",
}

// counts says how many services ended in each status, in a fixed order.
func counts(m *record.Run) string {
	n := map[string]int{}
	for _, s := range m.Services {
		n[s.Status]++
	}
	var parts []string
	for _, st := range []string{"built", "skipped", "failed", "cancelled", "hashed"} {
		if n[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[st], st))
		}
	}
	return strings.Join(parts, ", ")
}

// span is when the run's services started and ended, after it began.
func span(m *record.Run) time.Duration {
	var end int64
	for _, s := range m.Services {
		if t := s.Timing; t != nil {
			end = max(end, t.StartMs+t.TotalMs)
		}
	}
	return time.Duration(end) * time.Millisecond
}

// DurationCell is a service's time and, for one that pushed or exported
// cache, where it went: the image's export and push and the cache
// export, as BuildKit timed them, and the rest (context, cache import,
// steps, bkcache's checks) as build. exportMs is the wall time of push
// and cache export together, which BuildKit v0.33 runs partly at once;
// 0 (a record from before it was kept) counts them as run in turn.
// total formats the whole, part each share. The terminal's table, the
// job summary and the HTML report all split it here.
func DurationCell(totalMs, exportMs, pushMs, cacheMs int64, total, part func(ms int64) string) string {
	if pushMs == 0 && cacheMs == 0 {
		return total(totalMs)
	}
	if exportMs == 0 {
		exportMs = pushMs + cacheMs
	}
	return fmt.Sprintf("%s (build %s, push %s, cache %s)", total(totalMs), part(max(0, totalMs-exportMs)), part(pushMs), part(cacheMs))
}

// seconds formats milliseconds as seconds, to a tenth under a minute.
func seconds(ms int64) string {
	if ms >= 60000 {
		return fmt.Sprintf("%.0f s", float64(ms)/1000)
	}
	return fmt.Sprintf("%.1f s", float64(ms)/1000)
}

// Short is a hash or digest as bkcache shows it to people, in reports,
// tables and reasons: the first 12 characters of its hex, as docker
// shows image IDs.
func Short(hash string) string {
	if _, hex, ok := strings.Cut(hash, ":"); ok {
		hash = hex
	}
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}

func steps(s *record.Service) string {
	if s.Steps == nil {
		return "-"
	}
	return fmt.Sprintf("%d/%d", s.Steps.Cached, s.Steps.Total)
}

func timing(s *record.Service) (start, total int64) {
	if s.Timing == nil {
		return 0, 0
	}
	return s.Timing.StartMs, s.Timing.TotalMs
}

// reasons are the first MaxReasons top-level reasons a service rebuilt,
// and how many more there were; nil when its manifest says nothing of it.
func reasons(s *record.Service) (first []string, more int) {
	if s.Changes == nil {
		return nil, 0
	}
	var top []string
	for _, l := range s.Changes.Reasons() {
		if !strings.HasPrefix(l, "  ") {
			top = append(top, strings.TrimSuffix(l, ":"))
		}
	}
	if len(top) == 0 {
		top = []string{"no recorded input differs (a redacted build arg, or an input older manifests do not record)"}
	}
	if len(top) > MaxReasons {
		return top[:MaxReasons], len(top) - MaxReasons
	}
	return top, 0
}

// byStart is the services in the order they started, then by name.
func byStart(m *record.Run) []*record.Service {
	out := slices.Clone(m.Services)
	slices.SortStableFunc(out, func(a, b *record.Service) int {
		as, _ := timing(a)
		bs, _ := timing(b)
		if as != bs {
			return int(as - bs)
		}
		return strings.Compare(a.Service, b.Service)
	})
	return out
}
