package record

import (
	"fmt"
	"strings"
)

// Reasons says, one line per change, why the service rebuilds: what
// explain prints and the reports list. A line indented by two spaces
// details the line before it (a Dockerfile line that changed).
func (r *Report) Reasons() []string {
	var out []string
	add := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	if r.Scheme != nil {
		add("hash scheme changed: %s -> %s", r.Scheme.Old, r.Scheme.New)
	}
	if r.DockerfileReplaced {
		add("Dockerfile replaced (too large to compare line by line)")
	} else if r.DockerfileChanged {
		add("Dockerfile changed:")
		for _, l := range r.Dockerfile {
			add("  %s %3d | %s", l.Op, l.Line, l.Text)
		}
	}
	changes := func(what string, cs []Change) {
		for _, c := range cs {
			switch {
			case c.Old == "":
				add("%s %s added: %s", what, c.Key, c.New)
			case c.New == "":
				add("%s %s removed (was %s)", what, c.Key, c.Old)
			default:
				add("%s %s: %s -> %s", what, c.Key, c.Old, c.New)
			}
		}
	}
	changes("setting", r.Settings)
	changes("build arg", r.Args)
	changes("label", r.Labels)
	changes("secret id", r.Secrets)
	changes("ssh id", r.SSH)
	changes("context", r.Contexts)
	out = append(out, r.sourceReasons()...)
	return append(out, r.fileReasons()...)
}

// sourceReasons are the images and remote sources that moved.
func (r *Report) sourceReasons() []string {
	var out []string
	for _, c := range r.Images {
		switch {
		case c.Old == "":
			out = append(out, fmt.Sprintf("image %s now read: %s", c.Key, c.New))
		case c.New == "":
			out = append(out, fmt.Sprintf("image %s no longer read (was %s)", c.Key, c.Old))
		default:
			out = append(out, fmt.Sprintf("base image %s moved from %s to %s", c.Key, c.Old, c.New))
		}
	}
	for _, c := range r.Remotes {
		if c.Old != "" && c.New != "" {
			out = append(out, fmt.Sprintf("remote source %s moved from %s to %s", c.Key, c.Old, c.New))
		}
	}
	if r.BaseImages != nil {
		out = append(out, fmt.Sprintf("base images hashed %s, were %s", r.BaseImages.New, r.BaseImages.Old))
	}
	return out
}

func (r *Report) fileReasons() []string {
	var out []string
	for _, f := range r.Files {
		switch f.Kind {
		case "added", "removed":
			out = append(out, fmt.Sprintf("file %s %s: %s", f.Kind, f.Source+":"+f.Path, strings.TrimSpace(f.Old+f.New)))
		case "modified":
			out = append(out, fmt.Sprintf("file modified %s", f.Source+":"+f.Path))
		default:
			out = append(out, fmt.Sprintf("file %s changed %s: %s -> %s", f.Kind, f.Source+":"+f.Path, f.Old, f.New))
		}
	}
	return out
}
