package scalibrplugin

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	cpb "github.com/google/osv-scalibr/binary/proto/config_go_proto"
	"github.com/google/osv-scalibr/extractor"
	"github.com/google/osv-scalibr/extractor/filesystem"
	scalibrinv "github.com/google/osv-scalibr/inventory"
	scalibrplugin "github.com/google/osv-scalibr/plugin"
	packageurl "github.com/package-url/packageurl-go"

	"github.com/lading-registry/lading/internal/inventory/plugin"
)

// fake is an osv-scalibr extractor that wants *.lock files and reports one package per line
// "name version" of the file, failing on a line "fail".
type fake struct{}

func (fake) Name() string                              { return "fake/lock" }
func (fake) Version() int                              { return 0 }
func (fake) Requirements() *scalibrplugin.Capabilities { return &scalibrplugin.Capabilities{} }
func (fake) FileRequired(api filesystem.FileAPI) bool  { return strings.HasSuffix(api.Path(), ".lock") }

func (fake) Extract(_ context.Context, in *filesystem.ScanInput) (scalibrinv.Inventory, error) {
	b, err := io.ReadAll(in.Reader)
	if err != nil {
		return scalibrinv.Inventory{}, err
	}
	var inv scalibrinv.Inventory
	for line := range strings.Lines(string(b)) {
		name, version, _ := strings.Cut(strings.TrimSpace(line), " ")
		if name == "fail" {
			return inv, errors.New("bad line")
		}
		inv.Packages = append(inv.Packages, &extractor.Package{Name: name, Version: version})
	}
	return inv, nil
}

func newFake(*cpb.PluginConfig) (filesystem.Extractor, error) { return fake{}, nil }

func TestFileRequired(t *testing.T) {
	narrowed := New(newFake, Config{Narrow: func(f plugin.File) bool { return strings.HasPrefix(f.Path(), "app/") }})
	tests := []struct {
		path         string
		want, narrow bool
	}{
		{"app/x.lock", true, true},
		{"srv/x.lock", true, false}, // the extractor wants it, Narrow does not
		{"app/x.json", false, false},
	}
	for _, tt := range tests {
		f := plugin.NewFile(tt.path, 0o644, nil)
		if got := New(newFake, Config{}).FileRequired(f); got != tt.want {
			t.Errorf("FileRequired(%s) = %v, want %v", tt.path, got, tt.want)
		}
		if got := narrowed.FileRequired(f); got != tt.narrow {
			t.Errorf("narrowed FileRequired(%s) = %v, want %v", tt.path, got, tt.narrow)
		}
	}
}

func TestExtract(t *testing.T) {
	p := New(newFake, Config{Version: 3, Describe: "fake lock file",
		Convert: Language("npm", "NPM", true, packageurl.TypeNPM, true)})
	if p.Name() != "fake/lock" || p.Version() != 3 || p.MaxBytes(plugin.Limits{MaxMetadataBytes: 7}) != 7 {
		t.Errorf("name %s, version %d", p.Name(), p.Version())
	}
	tests := []struct {
		name, content string
		want          []string // name@version purl
		wantErr       string
	}{
		{"packages", "@scope/a 1.0.0\nb 2.0.0\nno-version \n", []string{"@scope/a@1.0.0 pkg:npm/%40scope/a@1.0.0", "b@2.0.0 pkg:npm/b@2.0.0"}, ""},
		{"error after a package", "a 1.0.0\nfail\n", []string{"a@1.0.0 pkg:npm/a@1.0.0"}, "fake lock file: bad line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bufs := plugin.NewBuffers(t.TempDir(), 1<<20)
			defer func() { _ = bufs.Close() }()
			c, err := bufs.Read(strings.NewReader(tt.content), int64(len(tt.content)), 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			found, err := p.Extract(context.Background(), &plugin.Input{Path: "/app/x.lock", Content: c,
				Env: &plugin.Env{Buffers: bufs, Skip: func(string, string) {}}})
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
			var got []string
			for _, pkg := range found.Packages {
				if pkg.Ecosystem != "npm" || pkg.PackageManager != "NPM" || !pkg.FromLockfile {
					t.Errorf("got %+v", pkg)
				}
				got = append(got, pkg.Name+"@"+pkg.Version+" "+pkg.PURL)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
