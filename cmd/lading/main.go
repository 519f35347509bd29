// Command lading is a self-hosted container registry with built-in vulnerability scanning.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "lading: work in progress")
	os.Exit(2)
}
