package ecr

import (
	"encoding/base64"
	"encoding/json"
)

// pageToken is the position a listing resumes from. On the wire it is opaque (base64 of JSON)
// and bound to its operation, repository and filter, so a token is never misread elsewhere.
type pageToken struct {
	Op     string `json:"o"`
	Repo   string `json:"r,omitempty"`
	Filter string `json:"f,omitempty"`
	After  string `json:"a"`
	After2 string `json:"b,omitempty"`
}

func (t pageToken) encode() *string {
	b, _ := json.Marshal(t)
	s := base64.RawURLEncoding.EncodeToString(b)
	return &s
}

// decodePageToken reads a nextToken; a token that is malformed or was issued for another
// listing is InvalidParameterException.
func decodePageToken(s *string, op, repo, filter string) (pageToken, error) {
	if s == nil {
		return pageToken{}, nil
	}
	bad := newError(errInvalidParameter, "Invalid parameter at 'nextToken' failed to satisfy constraint: 'the token is not one this listing issued'")
	b, err := base64.RawURLEncoding.DecodeString(*s)
	if err != nil || len(b) > 4096 {
		return pageToken{}, bad
	}
	var t pageToken
	if err := json.Unmarshal(b, &t); err != nil || t.Op != op || t.Repo != repo || t.Filter != filter || t.After == "" {
		return pageToken{}, bad
	}
	return t, nil
}
