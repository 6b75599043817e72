package sandbox

import "testing"

// TestContextBytes: each context transfer counts once, at its last
// figure, however many solves' progress shows it; other transfers and
// vertices do not count.
func TestContextBytes(t *testing.T) {
	progress := `{"vertexes":[{"digest":"sha256:ctx","name":"[s1] [internal] load build context"},{"digest":"sha256:df","name":"[s1] [internal] load build definition from Dockerfile"}]}
{"statuses":[{"id":"transferring context:","vertex":"sha256:ctx","current":100}]}
{"statuses":[{"id":"transferring context:","vertex":"sha256:ctx","current":700},{"id":"transferring dockerfile:","vertex":"sha256:df","current":50}]}
not json
{"vertexes":[{"digest":"sha256:ctx","name":"[s2] [internal] load build context"},{"digest":"sha256:own","name":"[s2] [internal] load build context"}]}
{"statuses":[{"id":"transferring context:","vertex":"sha256:ctx","current":700},{"id":"transferring context:","vertex":"sha256:own","current":30}]}
{"statuses":[{"id":"sha256:layer","vertex":"sha256:ctx","current":9999}]}
{"vertexes":[{"digest":"sha256:named","name":"[s3] [context lib] load from client"},{"digest":"sha256:ign","name":"[s3] [context lib] load .dockerignore"}]}
{"statuses":[{"id":"transferring lib:","vertex":"sha256:named","current":5000},{"id":"transferring lib:","vertex":"sha256:ign","current":3}]}
`
	if got := ContextBytes([]byte(progress)); got != 5730 {
		t.Fatalf("ContextBytes = %d, want 5730: the shared transfer once at 700, the other at 30, the additional context's 5000", got)
	}
}
