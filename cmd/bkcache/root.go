package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/hash/inputs"
	"github.com/bkcache/bkcache/solver"
	"github.com/bkcache/bkcache/solver/engine"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/publish"
	"github.com/bkcache/bkcache/solver/registry"
	"github.com/containerd/platforms"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// version is set at link time (-ldflags "-X main.version=v1.2.3", as
// .ci/release does); otherwise it comes from the build info.
var version = ""

func init() {
	if version == "" {
		bi, ok := debug.ReadBuildInfo()
		version = buildVersion(bi, ok)
	}
}

// buildVersion is the version the Go toolchain recorded: the module's
// (go install ...@v1.2.3), else a pseudo-version of the commit it was
// built from, marked +dirty when the tree had changes; "dev" without
// either.
func buildVersion(bi *debug.BuildInfo, ok bool) string {
	if !ok {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	vcs := map[string]string{}
	for _, s := range bi.Settings {
		vcs[s.Key] = s.Value
	}
	rev, when := vcs["vcs.revision"], vcs["vcs.time"]
	t, err := time.Parse(time.RFC3339, when)
	if len(rev) < 12 || err != nil {
		return "dev"
	}
	v := fmt.Sprintf("v0.0.0-%s-%s", t.UTC().Format("20060102150405"), rev[:12])
	if vcs["vcs.modified"] == "true" {
		v += "+dirty"
	}
	return v
}

// projectFlags are docker compose's global flags, shared by every
// command that reads a project.
type projectFlags struct {
	files      []string
	projectDir string
	name       string
	profiles   []string
	envFiles   []string
	buildArgs  []string
	platforms  []string
	// provenance and sbom are the flags' values, "" when not given.
	provenance, sbom string
	flags            *pflag.FlagSet // these flags, to tell which were given
	repository       string
	// noStatCache reads every file instead of trusting the digests of
	// unchanged files recorded by an earlier run.
	noStatCache bool
	baseImages  string   // resolve or as-written
	mirrors     []string // HOST=MIRROR
	reg         registryFlags
	// redactArgs are --redact-arg; redaction, once decided by loadPlan,
	// hashes and records them (the hash of every command must agree).
	redactArgs []string
	redaction  *inputs.Redaction
	// stderr is the running command's, for notices while loading.
	stderr io.Writer
	// parsed holds the flags above parsed, once (see parse).
	parsed *parsedFlags
}

// parsedFlags are the project-wide flags as typed values.
type parsedFlags struct {
	compose compose.Options
	mirrors registry.Mirrors
}

// redact is the run's redaction, decided once (it warns once).
func (f *projectFlags) redact() inputs.Redaction {
	if f.redaction == nil {
		r := redactor(f.redactArgs, f.stderr)
		f.redaction = &r
	}
	return *f.redaction
}

func (f *projectFlags) bind(cmd *cobra.Command) {
	fl := cmd.PersistentFlags()
	f.flags = fl
	fl.StringArrayVarP(&f.files, "file", "f", nil, "compose file (repeatable; later files override earlier ones)")
	fl.StringVar(&f.projectDir, "project-directory", "", "project directory (default: the directory of the first compose file)")
	fl.StringVarP(&f.name, "project-name", "p", "", "project name")
	fl.StringArrayVar(&f.profiles, "profile", nil, "activate a compose profile (repeatable)")
	fl.StringArrayVar(&f.envFiles, "env-file", nil, "environment file for interpolation (repeatable; default .env)")
	fl.StringArrayVar(&f.buildArgs, "build-arg", nil, "set a build arg of every service, NAME=VALUE, or NAME to take it from the environment (repeatable; as docker compose build --build-arg)")
	fl.StringArrayVar(&f.platforms, "platform", nil, "build every service for these platforms instead of its platforms:, OS/ARCH[/VARIANT] (repeatable or comma-separated; as bake's --set *.platform=; part of the hash)")
	fl.StringVar(&f.provenance, "provenance", "", "provenance attestation of every image: true, false, mode=min or mode=max (default: build.provenance, else mode=min, as buildx; part of the hash)")
	fl.StringVar(&f.sbom, "sbom", "", "SBOM attestation of every image: true, false or generator=IMAGE (default: build.sbom, else false; part of the hash)")
	fl.StringVar(&f.repository, "repository", "", "push every service to PREFIX/SERVICE instead of its image: name")
	fl.BoolVar(&f.noStatCache, "no-stat-cache", false, "read every input file instead of reusing the digests of files unchanged since the last run ($XDG_CACHE_HOME/bkcache/stat)")
	f.baseImages = string(inputs.Resolve)
	if os.Getenv("BKCACHE_BASE_IMAGES") == string(inputs.AsWritten) {
		f.baseImages = string(inputs.AsWritten)
	}
	fl.Var(choice{&f.baseImages, []string{string(inputs.Resolve), string(inputs.AsWritten)}}, "base-images",
		"how images the builds read enter the hash: resolve (by the digest their tag names now) or as-written (their refs as text, for offline work) (default $BKCACHE_BASE_IMAGES, else resolve)")
	fl.StringArrayVar(&f.mirrors, "registry-mirror", engine.Addrs(os.Getenv("BKCACHE_REGISTRY_MIRRORS")), "look images of HOST up through MIRROR, as buildkitd's mirrors fetch them: HOST=MIRROR, for example docker.io=mirror.example.com (repeatable; default $BKCACHE_REGISTRY_MIRRORS, comma-separated)")
	fl.StringArrayVar(&f.redactArgs, "redact-arg", engine.Addrs(os.Getenv("BKCACHE_REDACT_ARGS")), "never store or show this build arg's value: records and the hash keep an HMAC of it under the key in $"+inputs.RedactKeyEnv+"; every command of a pipeline must name the same args (repeatable; default $BKCACHE_REDACT_ARGS, comma-separated)")
	fl.StringArrayVar(&f.reg.insecure, "insecure-registry", nil, "registry host:port reached over plain HTTP (repeatable; loopback always is)")
}

// parse parses the project-wide flags once, into typed values, before a
// command does any work: a malformed one is a usage error in
// milliseconds. Commands that read no project never ask.
func (f *projectFlags) parse() (*parsedFlags, error) {
	if f.parsed != nil {
		return f.parsed, nil
	}
	copt, err := f.composeOptions()
	if err != nil {
		return nil, err
	}
	mirrors, err := registry.ParseMirrors(f.mirrors)
	if err != nil {
		return nil, usageError{fmt.Errorf("--registry-mirror: %w", err)}
	}
	f.parsed = &parsedFlags{compose: copt, mirrors: mirrors}
	return f.parsed, nil
}

func (f *projectFlags) composeOptions() (compose.Options, error) {
	o := compose.Options{Files: f.files, ProjectDir: f.projectDir, Name: f.name, Profiles: f.profiles, EnvFiles: f.envFiles, BuildArgs: f.buildArgs}
	for _, p := range f.platforms {
		for _, one := range strings.Split(p, ",") {
			if _, err := platforms.Parse(one); err != nil || one == "" {
				return o, usageError{fmt.Errorf("--platform %q: want OS/ARCH[/VARIANT], for example linux/arm64", one)}
			}
			o.Platforms = append(o.Platforms, one)
		}
	}
	attest := func(name string, parse func(string) (string, error)) (*string, error) {
		fl := f.flags.Lookup(name)
		if !fl.Changed {
			return nil, nil
		}
		v, err := parse(fl.Value.String())
		if err != nil {
			return nil, usageError{fmt.Errorf("--%s: %w", name, err)}
		}
		return &v, nil
	}
	var err error
	if o.Provenance, err = attest("provenance", compose.ParseProvenance); err != nil {
		return o, err
	}
	o.SBOM, err = attest("sbom", compose.ParseSBOM)
	return o, err
}

// registryFlags say how registries are reached, for every command.
type registryFlags struct {
	insecure []string
}

func (f *registryFlags) hosts() registry.Hosts { return registry.NewHosts(f.insecure...) }

// registry returns a client for the registries, waiting at most timeout
// (0: the default) for each answer.
func (f *registryFlags) registry(timeout time.Duration) *registry.Registry {
	return registry.New(registry.Options{Hosts: f.hosts(), Timeout: timeout})
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
	root.PersistentPreRun = func(cmd *cobra.Command, _ []string) {
		pf.stderr = cmd.ErrOrStderr()
		cmd.SetOut(safeOutput(cmd.OutOrStdout()))
	}
	pf.bind(root)
	root.AddCommand(newHashCmd(pf), newInputsCmd(pf), newBuildCmd(pf), newExplainCmd(pf), newManifestCmd(), newCacheCmd(pf),
		newEnvCmd(pf), newComposeOverrideCmd(pf), newCheckCmd(pf), newPruneCmd(pf), newReportCmd(), newVersionCmd(), newDaemonCmd(pf),
		newInstallPluginCmd(), newPluginMetadataCmd())
	adviseAll(root)
	return root
}

// adviseAll makes every command's error advise, in flags, what to do.
func adviseAll(cmd *cobra.Command) {
	if run := cmd.RunE; run != nil {
		cmd.RunE = func(c *cobra.Command, args []string) error { return advise(run(c, args)) }
	}
	for _, c := range cmd.Commands() {
		adviseAll(c)
	}
}

// usageError marks errors in how a command was called: exit status 2.
type usageError struct{ error }

// advise adds to an error from a library what the user can do about it
// with bkcache's flags.
func advise(err error) error {
	var noRepo *plan.NoRepositoryError
	var plainHTTP *registry.PlainHTTPError
	var noEngine *solver.EngineError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &noRepo):
		return noRepositoryAdvice(noRepo)
	case errors.Is(err, compose.ErrBuildArg):
		return usageError{fmt.Errorf("--build-arg: %w", err)}
	case errors.Is(err, compose.ErrNoComposeFile):
		return fmt.Errorf("%w: pass one with -f or --project-directory", err)
	case errors.As(err, &plainHTTP):
		return fmt.Errorf("%w: pass --insecure-registry %s to allow it", err, plainHTTP.Host)
	case errors.As(err, &noEngine):
		return fmt.Errorf("--load needs a running Docker engine, and `docker info` failed: %s: use --output type=docker,dest=FILE and `docker load -i FILE` elsewhere", noEngine.Detail)
	case errors.Is(err, engine.ErrCertWithoutKey):
		return fmt.Errorf("--tlscert and --tlskey go together")
	case errors.As(err, new(*inputs.ImageError)), errors.As(err, new(*inputs.RemoteError)), errors.Is(err, inputs.ErrUndecidedImage):
		return fmt.Errorf("%w; to hash the images as written instead (offline work), pass --base-images as-written", err)
	case errors.Is(err, registry.ErrImmutableTag):
		return fmt.Errorf("%w; bkcache moves the floating tags (--ci-tag, default ci, and cache-ci) after every build, which ECR's IMMUTABLE tag setting refuses: make the repository MUTABLE, or IMMUTABLE_WITH_EXCLUSION with an exclusion filter for the floating tags (ci*, cache-ci*, or what you pass as --ci-tag); hash tags are never overwritten, so they keep the guarantee", err)
	case errors.Is(err, publish.ErrCacheExportRequired):
		return fmt.Errorf("%w (--require-cache-export)", err)
	}
	return err
}

// noRepositoryAdvice says how to give services a registry repository.
func noRepositoryAdvice(e *plan.NoRepositoryError) error {
	s, why := e.Services, ""
	if e.Push {
		why = "--push: "
	}
	if len(s) == 1 {
		return fmt.Errorf("%sservice %q has no image: and no --repository was given, so it has no registry repository: give it one (for example image: ghcr.io/acme/%s) or pass --repository ghcr.io/acme", why, s[0], s[0])
	}
	return fmt.Errorf("%sservices %s have no image: and no --repository was given, so they have no registry repository: give each an image: (for example image: ghcr.io/acme/%s) or pass --repository ghcr.io/acme", why, strings.Join(s, ", "), s[0])
}

func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}
