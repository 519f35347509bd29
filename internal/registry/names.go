package registry

import (
	"regexp"
	"sync"
)

// repositoryNamePattern is ECR's repository name pattern, which is also valid for OCI.
// Compiled on first use, not at start: every command (`lading scan` too) pays for package
// initialisation, and these serve only some.
var repositoryNamePattern = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
})
var tagPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`) })

// ValidRepositoryName reports whether name is an acceptable repository name (2 to 256 characters).
func ValidRepositoryName(name string) bool {
	return len(name) >= 2 && len(name) <= 256 && repositoryNamePattern().MatchString(name)
}

// ValidTag reports whether tag is a valid OCI tag.
func ValidTag(tag string) bool { return tagPattern().MatchString(tag) }
