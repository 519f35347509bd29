package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Pinned peers and clients (peers-setup.md).
const (
	distributionModule  = "github.com/distribution/distribution/v3/cmd/registry"
	distributionVersion = "v3.1.2"
	craneModule         = "github.com/google/go-containerregistry/cmd/crane"
	craneVersion        = "v0.22.1"
)

type tools struct {
	lading, registry, crane, curl string
}

func output(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// goBinDir is where `go install` puts binaries.
func goBinDir(ctx context.Context) (string, error) {
	if bin, err := output(ctx, "", "go", "env", "GOBIN"); err != nil || bin != "" {
		return bin, err
	}
	gopath, err := output(ctx, "", "go", "env", "GOPATH")
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.SplitList(gopath)[0], "bin"), nil
}

// locate returns the first of the given binary that reports the pinned version, installing the
// pinned module with `go install` when none does.
func locate(ctx context.Context, explicit, name, module, version string, versionArgs ...string) (string, error) {
	check := func(path string) bool {
		out, err := output(ctx, "", path, versionArgs...)
		return err == nil && strings.Contains(out, version)
	}
	if explicit != "" {
		if !check(explicit) {
			return "", fmt.Errorf("%s does not report version %s", explicit, version)
		}
		return explicit, nil
	}
	gobin, err := goBinDir(ctx)
	if err != nil {
		return "", err
	}
	candidates := []string{filepath.Join(gobin, name)}
	if p, err := exec.LookPath(name); err == nil {
		candidates = append(candidates, p)
	}
	for _, c := range candidates {
		if check(c) {
			return c, nil
		}
	}
	progress("installing %s@%s", module, version)
	if _, err := output(ctx, "", "go", "install", module+"@"+version); err != nil {
		return "", err
	}
	if p := filepath.Join(gobin, name); check(p) {
		return p, nil
	}
	return "", fmt.Errorf("installed %s@%s but %s does not report that version", module, version, filepath.Join(gobin, name))
}

func findTools(ctx context.Context, cfg config, binDir string) (tools, error) {
	var t tools
	var err error
	progress("building lading from %s", cfg.repo)
	t.lading = filepath.Join(binDir, "lading")
	if _, err := output(ctx, cfg.repo, "go", "build", "-o", t.lading, "./cmd/lading"); err != nil {
		return t, err
	}
	if t.registry, err = locate(ctx, cfg.registry, "registry", distributionModule, distributionVersion, "--version"); err != nil {
		return t, err
	}
	if t.crane, err = locate(ctx, cfg.crane, "crane", craneModule, craneVersion, "version"); err != nil {
		return t, err
	}
	if t.curl, err = exec.LookPath("curl"); err != nil {
		return t, errors.New("curl not found: apt-get install -y curl")
	}
	return t, nil
}

// dockerConfig writes a docker config holding Lading's credentials for addr, for crane.
func dockerConfig(dir, addr string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	auth := encodeBasic(ladingUser, ladingSecret)
	return os.WriteFile(filepath.Join(dir, "config.json"),
		[]byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, addr, auth)), 0o600)
}
