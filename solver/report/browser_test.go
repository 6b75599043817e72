package report

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"golang.org/x/net/html"
)

// TestHTMLSelfContained reads the page as a browser would fetch it: no
// element may load anything (no src, no stylesheet or script link, no
// url() in its style), and the timeline has a row per service. It runs
// everywhere; TestHTMLInChromium adds a real browser where there is one.
func TestHTMLSelfContained(t *testing.T) {
	r := fixtureRun()
	page := render(t, func(b *bytes.Buffer) error { return HTML(b, r) })
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	csp := false
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		for _, a := range n.Attr {
			switch {
			case a.Key == "src" || (a.Key == "href" && !strings.HasPrefix(a.Val, "#")):
				t.Errorf("<%s %s=%q> loads from elsewhere", n.Data, a.Key, a.Val)
			case a.Key == "data-service":
				rows = append(rows, a.Val)
			case a.Key == "http-equiv" && a.Val == "Content-Security-Policy":
				csp = true
			}
		}
		if n.Data == "style" && n.FirstChild != nil && strings.Contains(n.FirstChild.Data, "url(") {
			t.Errorf("the style sheet loads a url()")
		}
		if n.Data == "script" {
			t.Errorf("the page has a script")
		}
	}
	if !csp {
		t.Error("no Content-Security-Policy: nothing stops the page loading from elsewhere")
	}
	slices.Sort(rows)
	if want := []string{"api", "docs", "web", "worker"}; !slices.Equal(rows, want) {
		t.Errorf("timeline rows %v, want %v", rows, want)
	}
}

// TestHTMLInChromium opens the page in headless Chromium at a laptop's
// and a phone's size: no console error, no request but the page itself,
// every service in the timeline's SVG, nothing wider than the screen.
// It saves a screenshot of each (in $BKCACHE_SCREENSHOTS when set), to
// be looked at.
func TestHTMLInChromium(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is missing: .ci/deps --test installs it")
		}
		t.Skip("chromium is missing (sudo apt-get install -y chromium); TestHTMLSelfContained still checks the page")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "report.html")
	if err := os.WriteFile(file, render(t, func(b *bytes.Buffer) error { return HTML(b, fixtureRun()) }), 0o644); err != nil {
		t.Fatal(err)
	}
	pageURL := (&url.URL{Scheme: "file", Path: file}).String()
	shots := os.Getenv("BKCACHE_SCREENSHOTS")
	if shots == "" {
		shots = dir
	}
	for _, size := range [][2]int64{{1280, 800}, {390, 844}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			b := openPage(t, browser, pageURL, size[0], size[1])
			if len(b.problems) > 0 {
				t.Errorf("console errors: %v", b.problems)
			}
			for _, u := range b.requests {
				if u != pageURL {
					t.Errorf("the page requested %s", u)
				}
			}
			slices.Sort(b.rows)
			if want := []string{"api", "docs", "web", "worker"}; !slices.Equal(b.rows, want) {
				t.Errorf("the timeline's SVG shows %v, want %v", b.rows, want)
			}
			// api's steps, as the fixture has them: the miss first in
			// orange on a light background, ran in green, cached in grey.
			green, grey, orange, none, light := "rgb(47, 125, 50)", "rgb(107, 114, 128)", "rgb(178, 106, 0)", "rgba(0, 0, 0, 0)", "rgb(255, 244, 229)"
			want := []string{"cached|" + grey + "|" + none, "ran unexpected|" + orange + "|" + light}
			for range 5 {
				want = append(want, "ran|"+green+"|"+none)
			}
			want = append(want, "cached|"+grey+"|"+none)
			if !slices.Equal(b.steps, want) {
				t.Errorf("api's steps as drawn:\n%q\nwant\n%q", b.steps, want)
			}
			if b.scrollWidth > size[0] {
				t.Errorf("the page is %d px wide on a %d px screen", b.scrollWidth, size[0])
			}
			if b.svgWidth < float64(size[0])*0.8 {
				t.Errorf("the timeline is only %.0f px wide on a %d px screen", b.svgWidth, size[0])
			}
			shot := filepath.Join(shots, fmt.Sprintf("report-%dx%d.png", size[0], size[1]))
			if err := os.WriteFile(shot, b.png, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("screenshot: %s", shot)
		})
	}
}

// visit is what one look at the page found.
type visit struct {
	problems, requests []string
	rows               []string
	steps              []string // api's step rows: class|colour of the state|background
	scrollWidth        int64
	svgWidth           float64
	png                []byte
}

func openPage(t *testing.T, browser, pageURL string, w, h int64) *visit {
	t.Helper()
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(int(w), int(h)))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	v := &visit{}
	var mu sync.Mutex
	listen := func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning {
				v.problems = append(v.problems, fmt.Sprintf("console.%s: %v", e.Type, e.Args))
			}
		case *runtime.EventExceptionThrown:
			v.problems = append(v.problems, "exception: "+e.ExceptionDetails.Text)
		case *log.EventEntryAdded:
			if e.Entry.Level == log.EntryLevelError || e.Entry.Level == log.EntryLevelWarning {
				v.problems = append(v.problems, "log: "+e.Entry.Text)
			}
		case *network.EventRequestWillBeSent:
			v.requests = append(v.requests, e.Request.URL)
		}
	}
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(listen))
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(w, h)); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	err := chromedp.Do(tctx, chromedp.Navigate(pageURL), chromedp.WaitVisible(chromedp.ID("timeline")))
	var rows []string
	var scrollWidth int64
	var svgWidth float64
	if err == nil {
		rows, err = chromedp.Run(tctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#timeline [data-service]')).map(e => e.dataset.service)`))
	}
	if err == nil {
		scrollWidth, err = chromedp.Run(tctx, chromedp.Evaluate[int64](`document.documentElement.scrollWidth`))
	}
	if err == nil {
		svgWidth, err = chromedp.Run(tctx, chromedp.Evaluate[float64](`document.getElementById('timeline').getBoundingClientRect().width`))
	}
	var steps []string
	if err == nil {
		steps, err = chromedp.Run(tctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#svc-api table.steps tbody tr')).map(r =>
			r.className + '|' + getComputedStyle(r.querySelector('td.state')).color + '|' + getComputedStyle(r).backgroundColor)`))
	}
	var png []byte
	if err == nil {
		png, err = chromedp.Run(tctx, chromedp.FullScreenshot(100))
	}
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	v.rows, v.scrollWidth, v.svgWidth, v.png, v.steps = rows, scrollWidth, svgWidth, png, steps
	return v
}
