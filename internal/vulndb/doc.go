// Package vulndb is Lading's advisory database: OSV records imported from files or synced
// from a mirror in OSV's bucket layout, kept in the metadata store, and matched against
// package versions through an in-memory index.
//
// # Writing
//
// DB.Import (`lading db import`) and DB.Update (`lading db update`, and Syncer in
// `lading serve`) turn their input into one batch: records are parsed and compared with the
// current version by content hash; new and changed records are staged in the store, where
// readers cannot see them; one short commit makes the whole batch current and raises the
// database version by one. A failed, corrupt or interrupted batch is aborted and the
// previous version stays as it was; a batch that changes nothing makes no version. An
// all.zip in an ecosystem's folder (and a sync of an ecosystem) is that ecosystem's complete
// set, so records it lacks are deleted. Each version records the (ecosystem, package) keys
// its batch added, changed, withdrew or deleted advisories for: the change set continuous
// scanning re-evaluates.
//
// Update fetches <Ecosystem>/modified_id.csv first and, when the database already holds the
// ecosystem, downloads only the records that are new or modified; otherwise it downloads
// all.zip, resuming a download that was cut short (Options.CacheDir).
//
// # Reading
//
// Index is an immutable snapshot of one version, keyed by (ecosystem, package). Watcher
// polls the store's version (one indexed SELECT) and, when it moves, rebuilds only the
// packages in the change sets, sharing everything else with the previous snapshot; it
// notifies subscribers with the change set. Every process and node runs its own Watcher
// over the shared store, so all see the same versions.
//
// # Matching
//
// Index.Affecting follows the OSV schema's evaluation: an advisory affects a version when
// the version is listed in affected[].versions or lies in an ECOSYSTEM or SEMVER range
// (introduced, fixed, last_affected and limit events, evaluated in version order); GIT
// ranges and withdrawn records never match. Versions are ordered with osv-scalibr's semantic
// package (Debian and Ubuntu, Alpine, the RPM distributions, Go, npm, PyPI, Maven, NuGet,
// RubyGems, crates.io, Packagist, Hex, Pub and more). Each package's boundary versions are
// parsed and sorted once, and every range is evaluated once per position among them at
// build time; a query parses its version once, places it by binary search and reads the
// verdicts. Versions asked about are remembered, and answers are shared between queries.
//
// Records that alias one another (a GHSA record and the CVE it aliases) are merged into one
// Vulnerability whose id is the CVE. Severity comes from CVSS v3.x or v4 vectors
// (pandatix/go-cvss), else a database_specific severity word or score, else the
// distribution's own rating, else a CVSS v2 vector, mapped to ECR's FindingSeverity.
package vulndb
