package vulndb

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/testfiles"
)

// Records, archives and listings come from mirrors and users' files: untrusted input.

func FuzzZip(f *testing.F) {
	for _, eco := range []string{"NuGet", "RubyGems", "OSS-Fuzz"} {
		raw, err := os.ReadFile(testfiles.Path(f, "osv-mini", eco, "all.zip"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte("PK\x05\x06" + strings.Repeat("\x00", 18)))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = eachInZip(context.Background(), bytes.NewReader(data), int64(len(data)), "fuzz.zip", func(_ string, raw []byte) error {
			if len(raw) > advisory.MaxRecordSize {
				t.Fatalf("record of %d bytes passed the limit", len(raw))
			}
			_, _ = advisory.Parse(raw)
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
			if advisory.CheckID(e.id) != nil || strings.ContainsAny(e.id, "/\\") {
				t.Fatalf("accepted id %q", e.id)
			}
		}
	})
}
