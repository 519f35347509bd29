package scanning

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/lading-registry/lading/internal/inventory"
)

// skimSample is an inventory as the scanner stores it, with packages of the kinds skimming
// must tell apart (OS packages keyed by source, names that need escaping).
func skimSample() storedInventory {
	return storedInventory{
		OS: &inventory.OSInfo{ID: "debian", VersionID: "12", Ecosystem: "Debian:12", Path: "etc/os-release", Layer: "sha256:aa"},
		Packages: []inventory.Package{
			{Ecosystem: "Debian:12", Name: "libssl3", Version: "3.0.11-1~deb12u1", SourceName: "openssl", Arch: "amd64",
				PURL: "pkg:deb/debian/libssl3@3.0.11-1~deb12u1?arch=amd64", Path: "var/lib/dpkg/status", Layer: "sha256:aa", PackageManager: inventory.ManagerOS},
			{Ecosystem: "Debian:12", Name: "openssl", Version: "3.0.11-1~deb12u1", Path: "var/lib/dpkg/status", Layer: "sha256:aa", PackageManager: inventory.ManagerOS},
			{Ecosystem: "npm", Name: "lodash", Version: "4.17.15", Path: "app/node_modules/lodash/package.json", Layer: "sha256:bb", PackageManager: inventory.ManagerNodePkg},
			{Ecosystem: "npm", Name: `we"ird\name<&>`, Version: "1.0.0", Path: "app/node_modules/x/package.json", Layer: "sha256:bb", PackageManager: inventory.ManagerNodePkg},
			{Ecosystem: "PyPI", Name: "PyYAML", Version: "6.0", Path: "usr/lib/python3/dist-packages/PyYAML-6.0.dist-info/METADATA", Layer: "sha256:cc", PackageManager: inventory.ManagerPythonPkg},
			{Name: "busybox", Version: "1.36.1-r29", Path: "lib/apk/db/installed", Layer: "sha256:cc", PackageManager: inventory.ManagerOS},
			// Go modules keep the functions their binary holds (reachability), and a read table
			// that holds nothing of a module stays read.
			{Ecosystem: "Go", Name: "golang.org/x/text", Version: "0.3.5", Path: "app/bin", Layer: "sha256:cc", PackageManager: inventory.ManagerGoBinary,
				Symbols: &inventory.Symbols{Packages: map[string][]string{"golang.org/x/text/language": {"Parse", "Tag.String"}}, GOOS: "linux", GOARCH: "amd64"}},
			{Ecosystem: "Go", Name: "gopkg.in/yaml.v2", Version: "2.2.8", Path: "app/bin", Layer: "sha256:cc", PackageManager: inventory.ManagerGoBinary,
				Symbols: &inventory.Symbols{Packages: map[string][]string{}}},
		},
		History: map[string]string{"sha256:aa": "ADD rootfs.tar /", "sha256:bb": "RUN npm ci"},
		Skipped: []inventory.Skipped{{Layer: "sha256:cc", Reason: "too big"}},
	}
}

// fullDecode is the reference: what decodeGzipJSON yields, then filtered.
func fullDecode(b []byte, keep func(inventory.Package) bool) (*storedInventory, error) {
	var inv storedInventory
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&inv); err != nil {
		return nil, err
	}
	if inv.Packages != nil {
		pkgs := []inventory.Package{}
		for _, p := range inv.Packages {
			if keep(p) {
				pkgs = append(pkgs, p)
			}
		}
		inv.Packages = pkgs
	}
	return &inv, nil
}

// checkSkim asserts that skimming b gives the full decode's result (or declines to skim).
func checkSkim(t *testing.T, b []byte, keep func(inventory.Package) bool) (skimmed bool) {
	t.Helper()
	want, werr := fullDecode(b, keep)
	got, err := skimInventory(b, keep)
	if errors.Is(err, errNotSkimmable) {
		return false
	}
	if werr != nil {
		return err == nil // invalid JSON: skimming may pass over what it does not decode
	}
	if err != nil {
		t.Fatalf("skim failed where the full decode succeeds: %v\n%s", err, b)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("skim differs from the full decode\n got %+v\nwant %+v\ninput %s", got, want, b)
	}
	return true
}

func keepNames(names ...string) func(inventory.Package) bool {
	return func(p inventory.Package) bool {
		for _, n := range names {
			if p.Name == n || p.SourceName == n {
				return true
			}
		}
		return false
	}
}

func TestSkimInventory(t *testing.T) {
	stored, err := encodeGzipJSON(skimSample())
	if err != nil {
		t.Fatal(err)
	}
	var rd inventoryReader
	raw := func(t *testing.T) []byte {
		t.Helper()
		if _, _, err := rd.readStream(stored, keepNames()); err != nil {
			t.Fatal(err)
		}
		return bytes.Clone(rd.buf.Bytes())
	}(t)
	indented, err := json.MarshalIndent(skimSample(), "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		in      []byte
		keep    func(inventory.Package) bool
		want    []string // names kept
		skimmed bool
	}{
		{"as stored, by source name", raw, keepNames("openssl"), []string{"libssl3", "openssl"}, true},
		{"as stored, escaped name", raw, keepNames(`we"ird\name<&>`), []string{`we"ird\name<&>`}, true},
		{"as stored, none", raw, keepNames("nothing"), []string{}, true},
		{"as stored, package without ecosystem", raw, func(p inventory.Package) bool { return p.Ecosystem == "" }, []string{"busybox"}, true},
		{"indented", indented, keepNames("lodash", "PyYAML"), []string{"lodash", "PyYAML"}, true},
		{"null packages", []byte(`{"packages":null,"os":null}`), keepNames("x"), nil, true},
		{"null element", []byte(`{"packages":[null,{"name":"x"}]}`), func(p inventory.Package) bool { return p.Name != "x" }, []string{""}, true},
		{"escaped value decides in full", []byte(`{"packages":[{"name":"a\u0062"}]}`), keepNames("ab"), []string{"ab"}, true},
		{"case-folded member decides in full", []byte(`{"packages":[{"NAME":"ab"}]}`), keepNames("ab"), []string{"ab"}, true},
		{"Kelvin sign folds", []byte("{\"packages\":[{\"pac\u212aageManager\":\"OS\",\"name\":\"b\",\"sourceName\":\"a\"}]}"), keepNames("a"), []string{"b"}, true},
		{"duplicate member decides in full", []byte(`{"packages":[{"name":"ab","name":"cd"}]}`), keepNames("cd"), []string{"cd"}, true},
		{"number for a string field", []byte(`{"packages":[{"name":1}]}`), keepNames(""), nil, false},
		{"invalid UTF-8 decides in full", []byte("{\"packages\":[{\"name\":\"a\xff\"}]}"), keepNames("a\uFFFD"), []string{"a\uFFFD"}, true},
		{"duplicate top-level member", []byte(`{"packages":[],"packages":[{"name":"a"}]}`), keepNames("a"), nil, false},
		{"case-folded top-level member", []byte(`{"Packages":[{"name":"a"}]}`), keepNames("a"), nil, false},
		{"escaped top-level member", []byte(`{"p\u0061ckages":[{"name":"a"}]}`), keepNames("a"), nil, false},
		{"not an object", []byte(`[]`), keepNames("a"), nil, false},
		{"trailing data is ignored, as by json.Decoder", []byte(`{"packages":[{"name":"a"}]} trailing`), keepNames("a"), []string{"a"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := checkSkim(t, tt.in, tt.keep); got != tt.skimmed {
				t.Fatalf("skimmed = %v, want %v", got, tt.skimmed)
			}
			if !tt.skimmed {
				return
			}
			inv, err := skimInventory(tt.in, tt.keep)
			if err != nil {
				t.Fatal(err)
			}
			names := []string{}
			for _, p := range inv.Packages {
				names = append(names, p.Name)
			}
			if !slices.Equal(names, tt.want) {
				t.Fatalf("kept %q, want %q", names, tt.want)
			}
		})
	}
}

// The read path gives the same packages whether or not the JSON can be skimmed.
func TestInventoryReaderFallsBack(t *testing.T) {
	var rd inventoryReader
	for _, doc := range []string{`{"packages":[{"name":"a"},{"name":"b"}]}`, `{"Packages":[{"name":"a"},{"name":"b"}]}`} {
		var buf bytes.Buffer
		zw := newTestGzip(&buf)
		if _, err := zw.Write([]byte(doc)); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		inv, kept, err := rd.readStream(buf.Bytes(), keepNames("b"))
		if err != nil {
			t.Fatal(err)
		}
		if len(inv.Packages) != 1 || inv.Packages[0].Name != "b" || !slices.Equal(kept, []int{1}) {
			t.Fatalf("%s: got %+v at %v", doc, inv.Packages, kept)
		}
	}
	if _, _, err := rd.readStream([]byte("not gzip"), keepNames("b")); err == nil {
		t.Fatal("no error for a damaged inventory")
	}
}

func newTestGzip(w io.Writer) *gzip.Writer { return gzip.NewWriter(w) }

// FuzzSkimInventory checks that skimming never disagrees with encoding/json: for any input
// the full decode accepts, skimming gives its result or declines.
func FuzzSkimInventory(f *testing.F) {
	raw, err := json.Marshal(skimSample())
	if err != nil {
		f.Fatal(err)
	}
	indented, _ := json.MarshalIndent(skimSample(), " ", "  ")
	for _, seed := range []string{string(raw), string(indented), `{"packages":[{"name":"a\u0062","NAME":"x"},null,{"name":1}]}`,
		`{"os":{"id":"alpine"},"packages":[{"sourceName":"o","name":"n","packageManager":"OS","ecosystem":"Alpine:v3.20"}],"history":{"a":"b"}}`,
		`{"packages":[{"name":"\"","x":[1,{"y":[true,false,null,-1.5e3]}]}]}`, `{"packages":[{"name":"a\`, `{`, ``} {
		f.Add([]byte(seed), "o")
	}
	f.Fuzz(func(t *testing.T, b []byte, pick string) {
		keep := func(p inventory.Package) bool {
			return pick != "" && (strings.Contains(p.Name, pick) || strings.Contains(p.SourceName, pick) || strings.Contains(p.Ecosystem, pick))
		}
		checkSkim(t, b, keep)
	})
}
