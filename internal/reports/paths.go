package reports

import (
	"path"
	"strings"

	"github.com/lading-registry/lading/internal/findings"
)

// Limits on a destination, from S3's: a bucket name is 3 to 63 characters, a key at most 1024
// bytes.
const (
	minBucket    = 3
	maxBucket    = 63
	maxKeyPrefix = 512 // leaves room under S3's 1024-byte keys for what follows the prefix
)

// Destination is where a job writes: a bucket (a directory of the reports directory) and a key
// prefix inside it. KMSKeyARN is required by Inspector's model and kept, but Lading does not
// encrypt the files it writes.
type Destination struct {
	Bucket    string
	KeyPrefix string
	KMSKeyARN string
}

// validBucket checks an S3 bucket name (lower-case letters, digits, dots and hyphens, starting
// and ending with a letter or digit, no ".."): such a name is always one safe path element.
func validBucket(b string) bool {
	if len(b) < minBucket || len(b) > maxBucket || strings.Contains(b, "..") {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && c != '.' && c != '-' {
			return false
		}
		if (i == 0 || i == len(b)-1) && !alnum {
			return false
		}
	}
	return true
}

// cleanKeyPrefix checks a key prefix and returns it without its trailing slash. Since the
// prefix becomes directories of the reports directory, what S3 would take but a file system
// would resolve elsewhere is refused: absolute paths, "." and ".." elements, empty elements,
// backslashes and control characters.
func cleanKeyPrefix(p string) (string, bool) {
	if len(p) > maxKeyPrefix {
		return "", false
	}
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		return "", true
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || r == '\\' || r == 0xfffd {
			return "", false
		}
	}
	for _, el := range strings.Split(p, "/") {
		if el == "" || el == "." || el == ".." {
			return "", false
		}
	}
	return p, true
}

// Validate checks a destination and returns it with its key prefix cleaned.
func (d Destination) Validate() (Destination, error) {
	if !validBucket(d.Bucket) {
		return d, findings.Invalid(findings.ReasonFieldValidationFailed, "s3Destination.bucketName",
			"must be an S3 bucket name: 3 to 63 lower-case letters, digits, dots and hyphens")
	}
	prefix, ok := cleanKeyPrefix(d.KeyPrefix)
	if !ok {
		return d, findings.Invalid(findings.ReasonFieldValidationFailed, "s3Destination.keyPrefix",
			"must be a relative key prefix of at most 512 bytes, without '.', '..' or empty path elements, backslashes or control characters")
	}
	if d.KMSKeyARN == "" {
		return d, findings.Invalid(findings.ReasonFieldValidationFailed, "s3Destination.kmsKeyArn", "is required")
	}
	d.KeyPrefix = prefix
	return d, nil
}

// key joins the prefix and the rest of a key.
func (d Destination) key(rest ...string) string {
	if d.KeyPrefix == "" {
		return path.Join(rest...)
	}
	return path.Join(append([]string{d.KeyPrefix}, rest...)...)
}
