package sandbox

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
)

// ContextBytes sums, over the context transfer vertices in BuildKit's
// raw progress (`bkcache build --progress rawjson`, one status per
// line), the last byte count of each of their transfers: the bytes of
// build context buildkitd received, for the build contexts and for the
// local additional contexts (the frontend's "[context NAME] load from
// client"). A vertex that several solves share appears in the progress
// of each and is counted once.
func ContextBytes(progress []byte) int64 {
	type status struct {
		ID, Vertex string
		Current    int64
	}
	var line struct {
		Vertexes []struct{ Digest, Name string }
		Statuses []status
	}
	names := map[string]string{}
	last := map[[2]string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(progress))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line.Vertexes, line.Statuses = nil, nil
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		for _, v := range line.Vertexes {
			names[v.Digest] = v.Name
		}
		for _, s := range line.Statuses {
			if strings.HasPrefix(s.ID, "transferring") {
				k := [2]string{s.Vertex, s.ID}
				last[k] = max(last[k], s.Current)
			}
		}
	}
	var total int64
	for k, n := range last {
		if name := names[k[0]]; strings.Contains(name, "load build context") || strings.HasSuffix(name, "] load from client") {
			total += n
		}
	}
	return total
}
