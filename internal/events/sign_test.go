package events

import "testing"

func TestSignAndVerify(t *testing.T) {
	// RFC 4231, test case 2.
	const want = "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
	body := []byte("what do ya want for nothing?")
	if got := Sign("Jefe", body); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	for _, tc := range []struct {
		name, secret, body, header string
		ok                         bool
	}{
		{"valid", "Jefe", string(body), want, true},
		{"wrong secret", "jefe", string(body), want, false},
		{"changed body", "Jefe", string(body) + " ", want, false},
		{"no prefix", "Jefe", string(body), want[len("sha256="):], false},
		{"other algorithm", "Jefe", string(body), "sha1=" + want[len("sha256="):], false},
		{"not hex", "Jefe", string(body), "sha256=zz", false},
		{"truncated", "Jefe", string(body), want[:len(want)-2], false},
		{"empty", "Jefe", string(body), "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Verify(tc.secret, []byte(tc.body), tc.header); got != tc.ok {
				t.Errorf("Verify = %v, want %v", got, tc.ok)
			}
		})
	}
}
