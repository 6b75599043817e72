package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/spf13/cobra"
)

// version is set at link time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

// projectFlags are docker compose's global flags, shared by every
// command that reads a project.
type projectFlags struct {
	files      []string
	projectDir string
	name       string
	profiles   []string
	envFiles   []string
	buildArgs  []string
	repository string
	// noStatCache reads every file instead of trusting the digests of
	// unchanged files recorded by an earlier run.
	noStatCache bool
	// stderr is the running command's, for notices while loading.
	stderr io.Writer
}

func (f *projectFlags) bind(cmd *cobra.Command) {
	fl := cmd.PersistentFlags()
	fl.StringArrayVarP(&f.files, "file", "f", nil, "compose file (repeatable; later files override earlier ones)")
	fl.StringVar(&f.projectDir, "project-directory", "", "project directory (default: the directory of the first compose file)")
	fl.StringVarP(&f.name, "project-name", "p", "", "project name")
	fl.StringArrayVar(&f.profiles, "profile", nil, "activate a compose profile (repeatable)")
	fl.StringArrayVar(&f.envFiles, "env-file", nil, "environment file for interpolation (repeatable; default .env)")
	fl.StringArrayVar(&f.buildArgs, "build-arg", nil, "set a build arg of every service, NAME=VALUE, or NAME to take it from the environment (repeatable; as docker compose build --build-arg)")
	fl.StringVar(&f.repository, "repository", "", "push every service to PREFIX/SERVICE instead of its image: name")
	fl.BoolVar(&f.noStatCache, "no-stat-cache", false, "read every input file instead of reusing the digests of files unchanged since the last run ($XDG_CACHE_HOME/bkcache/stat)")
}

func (f *projectFlags) options() compose.Options {
	return compose.Options{Files: f.files, ProjectDir: f.projectDir, Name: f.name, Profiles: f.profiles, EnvFiles: f.envFiles, BuildArgs: f.buildArgs}
}

func newRootCmd() *cobra.Command {
	pf := &projectFlags{stderr: os.Stderr}
	root := &cobra.Command{
		Use:   "bkcache",
		Short: "Build a compose project's images on BuildKit, skipping what has not changed",
		Long: `bkcache hashes exactly the inputs each compose service's image depends on,
skips a service when REPOSITORY:HASH is already in the registry, and builds
the others on buildkitd with registry cache keyed by the hash and by a
floating ci tag.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.PersistentPreRun = func(cmd *cobra.Command, _ []string) { pf.stderr = cmd.ErrOrStderr() }
	pf.bind(root)
	root.AddCommand(newHashCmd(pf), newInputsCmd(pf), newBuildCmd(pf), newExplainCmd(pf), newManifestCmd(), newCacheCmd(),
		newEnvCmd(pf), newComposeOverrideCmd(pf), newCheckCmd(pf), newVersionCmd(), newDaemonCmd())
	return root
}

// usageError marks errors in how a command was called: exit status 2.
type usageError struct{ error }

func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func checkFormat(format string, allowed ...string) error {
	for _, a := range allowed {
		if format == a {
			return nil
		}
	}
	return usageError{fmt.Errorf("unknown --format %q: use one of %v", format, allowed)}
}
