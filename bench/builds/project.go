package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

func svcName(i int) string { return fmt.Sprintf("svc%02d", i) }

// dockerfile is a realistic multi-stage build on an offline base: a
// dependency stage keyed by a lock file, a build stage over the sources,
// a small runtime image. The sleeps stand for install and compile time.
const dockerfile = `FROM busybox AS deps
WORKDIR /deps
COPY deps.lock .
RUN yes "$(cat deps.lock)" | head -c 6000000 > vendor.bin && sleep 1

FROM busybox AS build
WORKDIR /src
COPY --from=deps /deps/vendor.bin /deps/
COPY src/ ./
RUN sleep 1 && cat *.txt /deps/vendor.bin | sha256sum > /out.sum && mkdir /out && cp *.txt /out/

FROM busybox
COPY --from=build /out /app
COPY --from=build /out.sum /app/
CMD ["cat", "/app/out.sum"]
`

// writeProject writes the ten-service compose project into dir.
func writeProject(dir string) error {
	var compose strings.Builder
	compose.WriteString("name: bench\nservices:\n")
	for i := range services {
		svc := svcName(i)
		fmt.Fprintf(&compose, "  %s:\n    build: ./%s\n", svc, svc)
		files := map[string]string{
			"Dockerfile": dockerfile,
			"deps.lock":  fmt.Sprintf("%s-dependency-%d", svc, i*7919),
		}
		for j := range 20 {
			files[fmt.Sprintf("src/file%02d.txt", j)] = strings.Repeat(fmt.Sprintf("%s line %d\n", svc, j), 200)
		}
		files["src/main.txt"] = original(svc)
		if err := writeFiles(filepath.Join(dir, svc), files); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(compose.String()), 0o644)
}

// writeFiles writes each file (by its path under dir) with its content,
// making the directories it needs.
func writeFiles(dir string, files map[string]string) error {
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func original(svc string) string { return svc + " main\n" }

// edit rewrites svc's src/main.txt, the input the measurements change.
func edit(dir, svc, content string) error {
	return os.WriteFile(filepath.Join(dir, svc, "src", "main.txt"), []byte(content), 0o644)
}

// restore undoes the edits a measurement made to svc.
func restore(dir, svc string) { edit(dir, svc, original(svc)) }
