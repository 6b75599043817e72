package solver

import (
	"errors"
	"testing"

	"github.com/bkcache/bkcache/solver/record"
)

// TestAllFromCache: an export is left out only when every step came
// from cache; a FROM that pulled its image does not count, a step that
// ran does, and a solve whose steps are unknown never qualifies.
func TestAllFromCache(t *testing.T) {
	step := func(instruction, status string) record.Step {
		return record.Step{Instruction: instruction, Status: status}
	}
	for _, tc := range []struct {
		name string
		a    attempt
		want bool
	}{
		{"every step cached", attempt{steps: []record.Step{step("COPY a /a", record.StepCached), step("RUN make", record.StepCached)}}, true},
		{"a FROM pulled", attempt{steps: []record.Step{step("FROM busybox", record.StepRan), step("RUN make", record.StepCached)}}, true},
		{"a step ran", attempt{steps: []record.Step{step("COPY a /a", record.StepCached), step("RUN make", record.StepRan)}}, false},
		{"a step named from ran", attempt{steps: []record.Step{step("RUN from-here", record.StepRan)}}, false},
		{"no steps", attempt{}, false},
		{"steps unknown", attempt{steps: []record.Step{step("RUN make", record.StepCached)}, stepsErr: errors.New("no history")}, false},
	} {
		if got := allFromCache(tc.a); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestKeysUnchanged: only labels and the Dockerfile's text (whose steps
// the plan checks) may have changed for the imported cache to be the
// one an export would write; any input that enters a step's key, or no
// comparison at all, keeps the export.
func TestKeysUnchanged(t *testing.T) {
	ch := []record.Change{{Key: "x"}}
	for _, tc := range []struct {
		name string
		r    *record.Report
		want bool
	}{
		{"nothing (a forced rebuild)", &record.Report{Same: true}, true},
		{"labels", &record.Report{Labels: ch}, true},
		{"the Dockerfile's text", &record.Report{DockerfileChanged: true}, true},
		{"no comparison", nil, false},
		{"a setting (platforms)", &record.Report{Settings: ch}, false},
		{"an arg", &record.Report{Args: ch}, false},
		{"a secret", &record.Report{Secrets: ch}, false},
		{"an ssh entry", &record.Report{SSH: ch}, false},
		{"a context", &record.Report{Contexts: ch}, false},
		{"an image", &record.Report{Images: ch}, false},
		{"a remote", &record.Report{Remotes: ch}, false},
		{"the base images' mode", &record.Report{BaseImages: &record.Change{}}, false},
		{"the scheme", &record.Report{Scheme: &record.Change{}}, false},
		{"a file", &record.Report{Files: []record.FileChange{{}}}, false},
	} {
		if got := keysUnchanged(tc.r); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
