package cachekey

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
)

// An Op is the definition of the operation a cache key was computed
// from, as its plaintext holds it.
type Op struct {
	Type   string   // buildkit.exec.v0, buildkit.file.v0
	Args   []string // an exec's command
	Copies []string // a file op's copy sources, cleaned
	Mkdirs []string // a file op's created directories
	fields map[string]string
}

// op decodes the plaintext of the operation digest d: "sha256:X@N",
// holding X's JSON. Nil where the graph has no plaintext for d.
func (g *Graph) op(d string) *Op {
	p := g.plain[d]
	if p == nil || len(p.Sub) == 0 {
		return nil
	}
	var def map[string]any
	if err := json.Unmarshal([]byte(p.Sub[0].text()), &def); err != nil {
		return nil
	}
	o := &Op{fields: map[string]string{}}
	o.Type, _ = def["Type"].(string)
	if actions, ok := def["Actions"].([]any); ok {
		for i, a := range actions {
			s, _ := a.(string)
			var act map[string]any
			if b, err := decodeB64(s); err == nil && json.Unmarshal(b, &act) == nil {
				actions[i] = act
				o.addAction(act)
			}
		}
	}
	flatten("", def, o.fields)
	if meta, ok := dig(def, "Exec", "meta").(map[string]any); ok {
		for _, a := range asList(meta["args"]) {
			o.Args = append(o.Args, fmt.Sprint(a))
		}
	}
	return o
}

func (o *Op) addAction(act map[string]any) {
	if src, ok := act["src"].(string); ok {
		o.Copies = append(o.Copies, cleanPath(src))
	} else if p, ok := act["path"].(string); ok {
		if _, mk := act["makeParents"]; mk {
			o.Mkdirs = append(o.Mkdirs, path.Clean("/"+p))
		}
	}
}

// matches reports whether the op is what the Dockerfile instruction
// (as the step shows it: "RUN echo hi", "COPY src/ src/") asked for.
func (o *Op) matches(instruction string) bool {
	keyword, rest, _ := strings.Cut(strings.TrimSpace(instruction), " ")
	words := stripFlags(rest)
	switch strings.ToUpper(keyword) {
	case "RUN":
		if len(o.Args) == 0 {
			return false
		}
		var exec []string
		if json.Unmarshal([]byte(words), &exec) == nil {
			return slices.Equal(exec, o.Args)
		}
		return strings.Join(strings.Fields(words), " ") == strings.Join(strings.Fields(o.Args[len(o.Args)-1]), " ")
	case "COPY", "ADD":
		srcs := sourcesOf(words)
		if len(srcs) == 0 || len(srcs) != len(o.Copies) {
			return false
		}
		a, b := slices.Clone(srcs), slices.Clone(o.Copies)
		sort.Strings(a)
		sort.Strings(b)
		return slices.Equal(a, b)
	case "WORKDIR":
		dir := path.Clean("/" + strings.TrimSpace(words))
		return slices.ContainsFunc(o.Mkdirs, func(m string) bool { return m == dir || strings.HasSuffix(m, dir) })
	}
	return false
}

// stripFlags drops an instruction's leading --flags.
func stripFlags(s string) string {
	s = strings.TrimSpace(s)
	for strings.HasPrefix(s, "--") {
		_, s, _ = strings.Cut(s, " ")
		s = strings.TrimSpace(s)
	}
	return s
}

// sourcesOf is a COPY's or ADD's sources, cleaned: all its words but
// the destination.
func sourcesOf(words string) []string {
	var list []string
	if json.Unmarshal([]byte(words), &list) != nil {
		list = strings.Fields(words)
	}
	if len(list) < 2 {
		return nil
	}
	out := make([]string, 0, len(list)-1)
	for _, s := range list[:len(list)-1] {
		out = append(out, cleanPath(s))
	}
	return out
}

func cleanPath(p string) string { return strings.TrimPrefix(path.Clean("/"+p), "/") }

// diff names the fields in which o and other (the imported cache's)
// differ: "env MODE: slow (was fast)".
func (o *Op) diff(other *Op) []string {
	var out []string
	envs := func(fs map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range fs {
			if strings.HasPrefix(k, "Exec.meta.env[") {
				name, val, _ := strings.Cut(v, "=")
				m[name] = val
			}
		}
		return m
	}
	out = append(out, diffMaps("env ", envs(o.fields), envs(other.fields))...)
	rest := func(fs map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range fs {
			if !strings.HasPrefix(k, "Exec.meta.env[") {
				m[k] = v
			}
		}
		return m
	}
	return append(out, diffMaps("", rest(o.fields), rest(other.fields))...)
}

// diffMaps lists, sorted, each key whose value differs: "KEY: now (was
// then)", "KEY: now (was unset)", "KEY: unset (was then)".
func diffMaps(prefix string, now, was map[string]string) []string {
	var out []string
	for k, v := range now {
		switch w, ok := was[k]; {
		case !ok:
			out = append(out, fmt.Sprintf("%s%s: %s (was unset)", prefix, k, quote(v)))
		case w != v:
			out = append(out, fmt.Sprintf("%s%s: %s (was %s)", prefix, k, quote(v), quote(w)))
		}
	}
	for k, w := range was {
		if _, ok := now[k]; !ok {
			out = append(out, fmt.Sprintf("%s%s: unset (was %s)", prefix, k, quote(w)))
		}
	}
	sort.Strings(out)
	return out
}

func quote(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n\"") {
		return fmt.Sprintf("%q", s)
	}
	return s
}

// flatten writes v's leaves into out as "a.b[0].c" = value.
func flatten(prefix string, v any, out map[string]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			flatten(p, x, out)
		}
	case []any:
		for i, x := range v {
			flatten(fmt.Sprintf("%s[%d]", prefix, i), x, out)
		}
	case string:
		out[prefix] = v
	default:
		b, _ := json.Marshal(v)
		out[prefix] = string(b)
	}
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}
