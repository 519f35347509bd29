package oci

import "strings"

// route is a parsed /v2/ path.
type route struct {
	kind string // "base", "catalog", "tags", "manifest", "blob", "uploads", "upload", "referrers"
	name string
	ref  string // tag or digest, digest, or upload id
}

// parsePath splits a /v2/ path. Repository names may contain slashes, so the operation is found
// from the right; the name is validated separately so an invalid name gets NAME_INVALID.
func parsePath(p string) (route, bool) {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		if p == "/v2" {
			return route{kind: "base"}, true
		}
		return route{}, false
	}
	if rest == "" {
		return route{kind: "base"}, true
	}
	if rest == "_catalog" {
		return route{kind: "catalog"}, true
	}
	if name, ok := strings.CutSuffix(rest, "/tags/list"); ok {
		return route{kind: "tags", name: name}, true
	}
	if name, ok := strings.CutSuffix(rest, "/blobs/uploads/"); ok {
		return route{kind: "uploads", name: name}, true
	}
	if name, ok := strings.CutSuffix(rest, "/blobs/uploads"); ok {
		return route{kind: "uploads", name: name}, true
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return route{}, false
	}
	last := rest[i+1:]
	head := rest[:i]
	j := strings.LastIndexByte(head, '/')
	if j < 0 {
		return route{}, false
	}
	op, name := head[j+1:], head[:j]
	if last == "" || name == "" {
		return route{}, false
	}
	switch op {
	case "manifests":
		return route{kind: "manifest", name: name, ref: last}, true
	case "blobs":
		return route{kind: "blob", name: name, ref: last}, true
	case "referrers":
		return route{kind: "referrers", name: name, ref: last}, true
	case "uploads":
		if n, ok := strings.CutSuffix(name, "/blobs"); ok {
			return route{kind: "upload", name: n, ref: last}, true
		}
	}
	return route{}, false
}
