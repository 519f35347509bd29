//go:build !linux

package main

// releaseCodePages is a no-op where the executable's mappings are not known.
func releaseCodePages() {}
