package vulndb

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// Records, archives and listings come from mirrors and users' files: untrusted input.

func FuzzParseAdvisory(f *testing.F) {
	for _, eco := range []string{"Go", "PyPI", "Maven", "Debian", "crates.io", "npm"} {
		srcs, err := resolveSources([]string{"testdata/osv-mini/" + eco})
		if err != nil {
			f.Fatal(err)
		}
		_ = srcs[0].each(context.Background(), func(_ string, raw []byte) error {
			f.Add(raw)
			return nil
		})
	}
	f.Add([]byte(`{"id":"X","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"PyPI","name":"a"},
		"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"1.0","fixed":"2.0","limit":"*","last_affected":"1.5"}]}],"versions":["1.0"]}]}`))
	f.Add([]byte(`{"id":"X","modified":"1-01-01T00:00:00Z","severity":[{"type":"CVSS_V4","score":"CVSS:4.0/AV:N"}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		a, err := ParseAdvisory(raw)
		if err != nil {
			return
		}
		if checkID(a.ID) != nil {
			t.Fatalf("accepted a record with id %q", a.ID)
		}
		ix := BuildIndex(1, []*Advisory{a})
		for _, k := range a.Keys() {
			for _, v := range append(ix.BoundaryVersions(k), "0", "1.0.0", "", "~~") {
				_, _ = ix.Affecting(k.Ecosystem, k.Name, v)
			}
		}
	})
}

func FuzzAffecting(f *testing.F) {
	ix := miniIndex(f)
	f.Add("Debian:11", "zlib", "1:1.2.11.dfsg-2+deb11u1")
	f.Add("Maven", "org.apache.logging.log4j:log4j-core", "2.0-beta7")
	f.Add("PyPI", "Requests", "2.19.1.post1+local")
	f.Add("Alpine:v3.23", "openssl", "3.3.1-r0_git2024")
	f.Add("AlmaLinux:9", "openssl", "1:3.0.1-43.el9_0")
	f.Add("Go", "stdlib", "v1.19.0-rc.1")
	f.Fuzz(func(t *testing.T, eco, name, version string) {
		vs, _ := ix.Affecting(eco, name, version)
		for _, v := range vs {
			if v.VulnerabilityID == "" || v.Severity == "" || v.FixedVersions == nil {
				t.Fatalf("incomplete result %+v", v)
			}
		}
	})
}

func FuzzZip(f *testing.F) {
	for _, eco := range []string{"NuGet", "RubyGems", "OSS-Fuzz"} {
		raw, err := os.ReadFile("testdata/osv-mini/" + eco + "/all.zip")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte("PK\x05\x06" + strings.Repeat("\x00", 18)))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = eachInZip(context.Background(), bytes.NewReader(data), int64(len(data)), "fuzz.zip", func(_ string, raw []byte) error {
			if len(raw) > MaxRecordSize {
				t.Fatalf("record of %d bytes passed the limit", len(raw))
			}
			_, _ = ParseAdvisory(raw)
			return nil
		})
	})
}

func FuzzModifiedIDs(f *testing.F) {
	f.Add([]byte("2024-05-02T00:00:00Z,GHSA-test-0001\n2023-10-24T00:00:00.123456Z,DSA-5532-1\n"))
	f.Add([]byte("modified,id\n2024-01-01T00:00:00Z,npm/GHSA-x\n"))
	f.Add([]byte("2024-01-01T00:00:00Z,../../etc/passwd\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parseModifiedIDs(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, e := range entries {
			if checkID(e.id) != nil || strings.ContainsAny(e.id, "/\\") {
				t.Fatalf("accepted id %q", e.id)
			}
		}
	})
}
