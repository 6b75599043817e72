package report

import (
	"cmp"
	_ "embed"
	"html/template"
	"io"
	"strconv"
	"strings"

	"github.com/bkcache/bkcache/solver/record"
)

//go:embed report.html.tmpl
var pageTemplate string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"short":   Short,
	"seconds": seconds,
	"sub":     func(l string) bool { return strings.HasPrefix(l, "  ") },
}).Parse(pageTemplate))

// timeline geometry: heights in pixels, so that names stay readable at
// any width; positions and widths in percent of the page's width.
const (
	rowHeight = 34.0
	barTop    = 16.0
)

// pageData is what the template shows.
type pageData struct {
	Project, Created, Tool, Buildkit, Counts, Span string
	Height                                         float64
	Rows                                           []row
	Services                                       []*record.Service
	Details                                        []detail
	Ticks                                          []tick
	StepTime                                       []string // where the step time went
}

// row is one service's bar on the timeline.
type row struct {
	Name, Status, Title string
	Y, TextY, BarY      float64
	X, W                float64 // the whole bar, in percent
	CX, CY              float64 // a milestone's centre
	ImportW, ExportW    float64 // cache import at its start, export at its end
	ExportX             float64
	LabelX              float64 // where the name is written, to Anchor
	Anchor              string
	Milestone           bool
}

type tick struct {
	X      float64 // percent
	Label  string
	Anchor string
}

// detail is what the page says of one service below the table.
type detail struct {
	Service, Status, Error, ErrorAt string
	Reasons                         []string // "  "-indented lines detail the one before
	Warnings                        []string
	Steps                           []record.Step
}

// HTML writes the run as one self-contained page: no script, font,
// image or style from anywhere else (its Content-Security-Policy allows
// none), readable from a phone's width up.
func HTML(w io.Writer, r Run) error {
	m := r.Manifest
	d := pageData{
		Project: m.Project, Created: m.Created.UTC().Format("2006-01-02 15:04:05 UTC"), Tool: m.Tool.Version,
		Counts: counts(m), Span: seconds(span(m).Milliseconds()), Services: m.Services,
	}
	if m.Buildkit != nil {
		d.Buildkit = m.Buildkit.Version
	}
	d.Rows, d.Ticks = timelineRows(m)
	d.Height = rowHeight*float64(len(d.Rows)) + 24
	for _, s := range m.Services {
		d.Details = append(d.Details, detailOf(r, s))
	}
	d.StepTime = StepTimes(stepLists(m)...).Lines()
	return page.Execute(w, d)
}

func timelineRows(m *record.Run) ([]row, []tick) {
	total := float64(max(span(m).Milliseconds(), 1))
	scale := func(ms int64) float64 { return float64(ms) / total * 100 }
	var rows []row
	for i, s := range byStart(m) {
		start, dur := timing(s)
		y := float64(i) * rowHeight
		r := row{Name: s.Service, Status: s.Status, Y: y, TextY: y + 12, BarY: y + barTop,
			X: scale(start), W: max(scale(dur), 0.3), Milestone: s.Status == "skipped" || s.Status == "hashed"}
		r.CX, r.CY = min(max(r.X, 1), 99), r.BarY+6
		r.LabelX, r.Anchor = r.X, "start"
		if r.X > 60 {
			r.LabelX, r.Anchor = r.X+r.W, "end"
		}
		r.Title = s.Service + ": " + s.Status + ", " + durationOf(s, seconds)
		if t := s.Timing; t != nil {
			r.ImportW = min(scale(t.CacheImportMs), r.W)
			r.ExportW = min(scale(t.CacheExportMs), r.W-r.ImportW)
			r.ExportX = r.X + r.W - r.ExportW
			if t.CacheImportMs > 0 {
				r.Title += ", cache import " + seconds(t.CacheImportMs)
			}
		}
		rows = append(rows, r)
	}
	var ticks []tick
	for i := 0; i <= 4; i++ {
		ms := int64(total) * int64(i) / 4
		anchor := map[int]string{0: "start", 4: "end"}[i]
		ticks = append(ticks, tick{X: scale(ms), Label: seconds(ms), Anchor: cmp.Or(anchor, "middle")})
	}
	return rows, ticks
}

func detailOf(r Run, s *record.Service) detail {
	d := detail{Service: s.Service, Status: s.Status, Error: s.Error, Warnings: s.Warnings}
	if s.Steps != nil && s.Status == "built" {
		d.Steps = s.Steps.List
	}
	if s.ErrorAt != nil {
		d.ErrorAt = r.path(s.ErrorAt.File) + ":" + strconv.Itoa(s.ErrorAt.Line)
	}
	if s.Changes != nil && s.Status != "skipped" {
		d.Reasons = s.Changes.Reasons()
		if len(d.Reasons) == 0 {
			d.Reasons = []string{"no recorded input differs"}
		}
	}
	return d
}
