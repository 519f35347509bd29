// Package scanning joins the registry, the advisory database and the scanner: it decides from the
// registry scanning configuration (package policy) which pushes are scanned, runs scans as durable
// jobs, keeps each image's findings current when advisories change (continuous scanning), and
// writes the events those changes cause.
package scanning
