package advisory

import "testing"

// Records come from mirrors and users' files: untrusted input.

func FuzzParse(f *testing.F) {
	for _, raw := range miniRecords(f, "Go", "PyPI", "Maven", "Debian", "crates.io", "npm") {
		f.Add(raw)
	}
	f.Add([]byte(`{"id":"X","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"PyPI","name":"a"},
		"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"1.0","fixed":"2.0","limit":"*","last_affected":"1.5"}]}],"versions":["1.0"]}]}`))
	f.Add([]byte(`{"id":"X","modified":"1-01-01T00:00:00Z","severity":[{"type":"CVSS_V4","score":"CVSS:4.0/AV:N"}]}`))
	f.Add([]byte(`{"id":"GO-1","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Go","name":"m"},
		"ecosystem_specific":{"imports":[{"path":"m/p","symbols":["F","T.M"],"goos":["linux"]},{"path":""}]}}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		a, err := Parse(raw)
		if err != nil {
			return
		}
		if CheckID(a.ID) != nil {
			t.Fatalf("accepted a record with id %q", a.ID)
		}
		for _, af := range a.Affected {
			for _, im := range af.Imports {
				if im.Path == "" {
					t.Fatalf("kept an import without a path: %+v", af.Imports)
				}
			}
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
