package registry

import "regexp"

// repositoryNamePattern is ECR's repository name pattern, which is also valid for OCI.
var repositoryNamePattern = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)

var tagPattern = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

// ValidRepositoryName reports whether name is an acceptable repository name (2 to 256 characters).
func ValidRepositoryName(name string) bool {
	return len(name) >= 2 && len(name) <= 256 && repositoryNamePattern.MatchString(name)
}

// ValidTag reports whether tag is a valid OCI tag.
func ValidTag(tag string) bool { return tagPattern.MatchString(tag) }
