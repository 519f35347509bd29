package findings

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/lading-registry/lading/internal/store"
)

// Query is what the store is asked for: one page of findings.
type Query struct {
	Criteria Criteria
	Sort     Sort
	// Limit is how many findings to return at most.
	Limit int
	// After, when set, is the cursor of the last finding of the previous page.
	After *Cursor
	// Account and Region are what the registry's ARNs and resource ids are made of: criteria
	// on them compare against these.
	Account, Region string
	// Exploited are the CVE ids known to be exploited (the KEV catalogue): a finding whose
	// vulnerability or alias is one has exploitAvailable YES.
	Exploited []string
}

// Cursor is where a page ends: the sort value of its last finding (Text or Num, as the sort
// field is; neither for the default order) and the finding's key.
type Cursor struct {
	Text            *string  `json:"t,omitempty"`
	Num             *float64 `json:"n,omitempty"`
	Repository      string   `json:"r"`
	Digest          string   `json:"d"`
	VulnerabilityID string   `json:"v"`
}

// Listed is a finding as a query returns it: the stored finding with its detail, and its
// image as it is now (tags, push and pull times).
type Listed struct {
	Finding  store.Finding
	Manifest store.Manifest
	Cursor   Cursor
}

// pageToken is a nextToken on the wire: opaque, and bound to the operation and the query it
// pages through, so that a token is never read by another listing or filter.
type pageToken struct {
	Op     string `json:"o"`
	Query  string `json:"q"`
	Cursor Cursor `json:"c"`
}

// maxTokenLen bounds the tokens decoded (the model allows a million characters).
const maxTokenLen = 8192

// queryHash identifies a query's criteria and sort (encoding/json sorts map keys, so equal
// criteria hash alike).
func queryHash(c Criteria, s Sort) string {
	b, _ := json.Marshal(struct {
		C Criteria
		S Sort
	}{c, s})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// EncodeToken makes the nextToken of a page ending at cur.
func EncodeToken(op string, c Criteria, s Sort, cur Cursor) string {
	b, _ := json.Marshal(pageToken{Op: op, Query: queryHash(c, s), Cursor: cur})
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeToken reads a nextToken given to op with criteria c and sort s. A token that does not
// decode, or that another operation or query issued, is a *ValidationError.
func DecodeToken(op string, c Criteria, s Sort, token string) (Cursor, error) {
	bad := func(why string) error {
		return Invalid(ReasonFieldValidationFailed, "nextToken", why)
	}
	if len(token) > maxTokenLen {
		return Cursor{}, bad("the token is not one this listing issued")
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return Cursor{}, bad("the token is not one this listing issued")
	}
	var t pageToken
	if err := json.Unmarshal(b, &t); err != nil || t.Op == "" {
		return Cursor{}, bad("the token is not one this listing issued")
	}
	if t.Op != op {
		return Cursor{}, bad(fmt.Sprintf("the token was issued by %s, not %s", t.Op, op))
	}
	if t.Query != queryHash(c, s) {
		return Cursor{}, bad("the token was issued for other filter or sort criteria")
	}
	if t.Cursor.Text != nil && t.Cursor.Num != nil {
		return Cursor{}, bad("the token is not one this listing issued")
	}
	return t.Cursor, nil
}
