package ecr

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"
)

// Patterns of the ECR model (botocore, newest).
// Compiled on first use, not at start: every command (`lading scan` too) pays for package
// initialisation, and these serve only some.
var (
	registryIDPattern  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]{12}$`) })
	layerDigestPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+$`) })
	uploadIDPattern    = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	})
	repoNamePattern = `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`
	repoNameRegexp  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile("^" + repoNamePattern + "$") })
)

// validator collects the constraint violations of one request. Operations whose model lists
// ValidationException report them as AWS's validation layer does ("1 validation error
// detected: ..."); the older operations report the first as InvalidParameterException.
type validator struct {
	coral bool
	errs  []violation
}

type violation struct {
	path, value, constraint string
}

func (v *validator) add(path, value, constraint string) {
	v.errs = append(v.errs, violation{path, value, constraint})
}

func (v *validator) err() error {
	if len(v.errs) == 0 {
		return nil
	}
	if v.coral {
		parts := make([]string, len(v.errs))
		for i, e := range v.errs {
			parts[i] = fmt.Sprintf("Value %s at '%s' failed to satisfy constraint: Member %s", e.value, e.path, e.constraint)
		}
		noun := "errors"
		if len(parts) == 1 {
			noun = "error"
		}
		return newError(errValidation, "%d validation %s detected: %s", len(parts), noun, strings.Join(parts, "; "))
	}
	e := v.errs[0]
	return newError(errInvalidParameter, "Invalid parameter at '%s' failed to satisfy constraint: 'Member %s'", e.path, e.constraint)
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return "'" + s + "'"
}

func (v *validator) required(path string, present bool) bool {
	if !present {
		v.add(path, "null", "must not be null")
	}
	return present
}

// str checks a string member: length in characters (max < 0: no maximum) and pattern.
func (v *validator) str(path string, s *string, required bool, minLen, maxLen int, pattern *regexp.Regexp) {
	if s == nil {
		if required {
			v.required(path, false)
		}
		return
	}
	n := utf8.RuneCountInString(*s)
	switch {
	case n < minLen:
		v.add(path, quote(*s), fmt.Sprintf("must have length greater than or equal to %d", minLen))
	case maxLen >= 0 && n > maxLen:
		v.add(path, quote(*s), fmt.Sprintf("must have length less than or equal to %d", maxLen))
	case pattern != nil && !pattern.MatchString(*s):
		p := strings.TrimSuffix(strings.TrimPrefix(pattern.String(), "^"), "$")
		v.add(path, quote(*s), "must satisfy regular expression pattern: "+p)
	}
}

func (v *validator) enum(path string, s *string, required bool, allowed ...string) {
	if s == nil {
		if required {
			v.required(path, false)
		}
		return
	}
	for _, a := range allowed {
		if *s == a {
			return
		}
	}
	v.add(path, quote(*s), "must satisfy enum value set: ["+strings.Join(allowed, ", ")+"]")
}

// list checks a list's length; a nil list is absent.
func (v *validator) list(path string, n int, present, required bool, minLen, maxLen int) {
	if !present {
		if required {
			v.required(path, false)
		}
		return
	}
	switch {
	case n < minLen:
		v.add(path, fmt.Sprintf("'[%d items]'", n), fmt.Sprintf("must have length greater than or equal to %d", minLen))
	case maxLen >= 0 && n > maxLen:
		v.add(path, fmt.Sprintf("'[%d items]'", n), fmt.Sprintf("must have length less than or equal to %d", maxLen))
	}
}

func (v *validator) intRange(path string, n *int64, required bool, minV, maxV int64) {
	if n == nil {
		if required {
			v.required(path, false)
		}
		return
	}
	if *n < minV {
		v.add(path, fmt.Sprint(*n), fmt.Sprintf("must have value greater than or equal to %d", minV))
	} else if maxV >= 0 && *n > maxV {
		v.add(path, fmt.Sprint(*n), fmt.Sprintf("must have value less than or equal to %d", maxV))
	}
}

func (v *validator) repositoryName(path string, s *string, required bool) {
	v.str(path, s, required, 2, 256, repoNameRegexp())
}

func (v *validator) registryID(s *string) {
	v.str("registryId", s, false, 0, -1, registryIDPattern())
}
