package sqlite

// fakeDigest returns a fake but well-formed sha256 digest ending in c.
func fakeDigest(c string) string {
	d := "sha256:"
	for len(d)+len(c) < 71 {
		d += "0"
	}
	return d + c
}
