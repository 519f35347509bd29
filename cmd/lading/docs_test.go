package main

import (
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestArchitectureListsEveryCommand keeps the command list of docs/architecture.md's cmd/lading
// entry in step with the commands the binary has.
func TestArchitectureListsEveryCommand(t *testing.T) {
	b, err := os.ReadFile("../../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	_, entry, ok := strings.Cut(string(b), "\ncmd/lading/")
	if !ok {
		t.Fatal("docs/architecture.md has no cmd/lading/ entry")
	}
	// The entry runs to the next package line: one that does not start with a space.
	var lines []string
	for i, l := range strings.Split(entry, "\n") {
		if i > 0 && !strings.HasPrefix(l, " ") {
			break
		}
		lines = append(lines, l)
	}
	listed := strings.Join(strings.Fields(strings.Join(lines, " ")), " ")
	var walk func(c *cobra.Command, path string)
	walk = func(c *cobra.Command, path string) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			p := strings.TrimSpace(path + " " + sub.Name())
			if !strings.Contains(listed, sub.Name()) {
				t.Errorf("docs/architecture.md's cmd/lading entry does not list %q", p)
			}
			walk(sub, p)
		}
	}
	walk(newRootCommand(), "")
}
