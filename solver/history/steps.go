package history

import (
	"cmp"
	"slices"

	"github.com/bkcache/bkcache/hash/dockerfile"
	"github.com/bkcache/bkcache/solver/record"
	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
)

// Steps returns the Dockerfile steps of a solve: each vertex of its
// progress that the provenance places on a line of the Dockerfile, one
// step per line (a build of several platforms runs a line once for
// each). A step ran if any of its vertices ran; its duration is theirs,
// summed. A FROM is no step: BuildKit resolves its image, and never
// reports it cached; a moved base shows in the steps after it. cached holds the vertices BuildKit reported from cache at any
// point (see stepCounter). Vertices the provenance does not place (the
// build definition, the contexts, the exports) are not steps.
func Steps(provs []*Provenance, vertices map[digest.Digest]*client.Vertex, cached map[digest.Digest]bool) []record.Step {
	byLine := map[int]*record.Step{}
	for _, p := range provs {
		lines, instr := placement(p)
		for dgst, l := range lines {
			v := vertices[dgst]
			if v == nil || v.Completed == nil || instr[l].From {
				continue // a FROM resolves and pulls an image: no step of its own
			}
			s := byLine[l]
			if s == nil {
				in := instr[l]
				s = &record.Step{Stage: in.Stage, Line: l, Instruction: in.Text, Status: record.StepCached}
				byLine[l] = s
			}
			if !cached[dgst] {
				s.Status = record.StepRan
			}
			if v.Started != nil {
				s.DurationMs += v.Completed.Sub(*v.Started).Milliseconds()
			}
		}
	}
	out := make([]record.Step, 0, len(byLine))
	for _, s := range byLine {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b record.Step) int { return cmp.Compare(a.Line, b.Line) })
	return out
}

// placement maps the vertices of p's build to the line of the
// Dockerfile each came from, and lists that Dockerfile's instructions
// by line. Only locations in the Dockerfile count: the first source of
// the Dockerfile language, as the frontend records it.
func placement(p *Provenance) (map[digest.Digest]int, map[int]dockerfile.Instruction) {
	cfg := p.BuildDefinition.InternalParameters.BuildConfig
	meta := p.RunDetails.Metadata
	if cfg == nil || meta == nil || meta.BuildKitMetadata.Source == nil {
		return nil, nil
	}
	src := meta.BuildKitMetadata.Source
	file := slices.IndexFunc(src.Infos, func(i SourceInfo) bool { return i.Language == "Dockerfile" })
	if file < 0 {
		return nil, nil
	}
	lines := map[digest.Digest]int{}
	for dgst, step := range cfg.DigestMapping {
		locs := src.Locations[step]
		if locs == nil {
			continue
		}
		for _, l := range locs.Locations {
			if int(l.SourceIndex) == file && len(l.Ranges) > 0 && l.Ranges[0].Start != nil {
				lines[dgst] = int(l.Ranges[0].Start.Line)
				break
			}
		}
	}
	return lines, dockerfile.Instructions(src.Infos[file].Data)
}
