// Package triage applies what people decided about findings to a scan: an ignore file (ids to
// leave out, each until an optional date) and VEX documents (OpenVEX 0.2 and CycloneDX
// statements that a vulnerability does not affect a package or an image). Both are read from
// files users hand to `lading scan`, so their parsers treat them as untrusted input.
package triage
