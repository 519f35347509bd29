// Package advisory is the pure core of Lading's advisory database: the OSV record model,
// the version orderings of OSV's ecosystems, severities, and the in-memory Index that
// matching queries. It does no I/O (a test of internal/match enforces the rule on its
// imports): records come in as bytes and leave as values, so internal/vulndb, which
// imports, syncs and stores them, and internal/match, which matches inventories against
// them, share it without sharing I/O.
//
// # Records
//
// Parse checks and parses one OSV JSON record; Canonicalize compacts it and hashes it, so
// that re-exports differing only in whitespace compare equal. Package keys (PackageKey,
// MakeKey) are (ecosystem, package) pairs as OSV writes them, with names normalised where
// the ecosystem is case- or punctuation-insensitive.
//
// # Index
//
// Index is an immutable snapshot of one database version, keyed by (ecosystem, package).
// BuildIndex builds one from every current record; Index.WithChanges builds the next
// version from the records of the changed packages, sharing everything else.
//
// # Matching
//
// Index.Affecting follows the OSV schema's evaluation: an advisory affects a version when
// the version is listed in affected[].versions or lies in an ECOSYSTEM or SEMVER range
// (introduced, fixed, last_affected and limit events, evaluated in version order); GIT
// ranges and withdrawn records never match. Versions are ordered with osv-scalibr's semantic
// package (Debian and Ubuntu, Alpine, the RPM distributions, Go, npm, PyPI, Maven, NuGet,
// RubyGems, crates.io, Packagist, Hex, Pub and more). Each package's boundary versions are
// parsed and sorted once, and every range is evaluated once per position among them, when
// a query first lands there; a query parses its version once, places it by binary search and
// reads the verdicts. Versions asked about are remembered, and answers are shared between queries.
//
// Records that alias one another (a GHSA record and the CVE it aliases) are merged into one
// Vulnerability whose id is the CVE. Severity comes from CVSS v3.x or v4 vectors
// (pandatix/go-cvss), else a database_specific severity word or score, else the
// distribution's own rating, else a CVSS v2 vector, mapped to ECR's FindingSeverity.
package advisory
