package report

import "testing"

func TestRepositoryAndTagOfName(t *testing.T) {
	for _, tc := range []struct{ name, repo, tag string }{
		{"", "image", ""},
		{"neo4j-like", "neo4j-like", ""},
		{"corpus/neo4j-like:4.4.0", "corpus/neo4j-like", "4.4.0"},
		{"registry.example.com:5000/Corpus/App:v1", "corpus/app", "v1"},
		{"localhost:5000/app", "app", ""},
		{"localhost/app", "localhost/app", ""}, // no dot nor port: not told from a path component
		{"ghcr.io/org/app", "org/app", ""},
	} {
		img := Image{Name: tc.name}
		if got := img.repository(); got != tc.repo {
			t.Errorf("%q: repository %q, want %q", tc.name, got, tc.repo)
		}
		if got := img.tag(); got != tc.tag {
			t.Errorf("%q: tag %q, want %q", tc.name, got, tc.tag)
		}
	}
}
