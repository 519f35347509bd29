package events

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want FileConfig
		err  string // substring of the error; empty for success
	}{
		{name: "empty", in: "", want: FileConfig{}},
		{name: "no webhooks", in: "webhooks: []\n", want: FileConfig{Webhooks: []WebhookConfig{}}},
		{name: "yaml", in: `
webhooks:
  - url: https://siem.example.com/lading
    name: siem
    secret_env: SIEM_SECRET
    detail_types: ["Inspector2 Finding", "ECR Image Scan"]
  - url: http://127.0.0.1:9000/hook
    secret: s3cret
`, want: FileConfig{Webhooks: []WebhookConfig{
			{Name: "siem", URL: "https://siem.example.com/lading", SecretEnv: "SIEM_SECRET", DetailTypes: []string{"Inspector2 Finding", "ECR Image Scan"}},
			{URL: "http://127.0.0.1:9000/hook", Secret: "s3cret"},
		}}},
		{name: "json", in: `{"webhooks":[{"url":"https://h.example/x","secret_file":"k"}]}`,
			want: FileConfig{Webhooks: []WebhookConfig{{URL: "https://h.example/x", SecretFile: "k"}}}},
		{name: "unknown key", in: "webhooks:\n  - url: https://h/x\n    secrte: a\n", err: "secrte"},
		{name: "unknown top-level key", in: "hooks: []\n", err: "hooks"},
		{name: "missing url", in: "webhooks:\n  - secret: a\n", err: "url is required"},
		{name: "bad scheme", in: "webhooks:\n  - url: ftp://h/x\n", err: "scheme"},
		{name: "no host", in: "webhooks:\n  - url: 'http:///x'\n", err: "no host"},
		{name: "two secrets", in: "webhooks:\n  - url: https://h/x\n    secret: a\n    secret_env: B\n", err: "at most one"},
		{name: "unknown detail type", in: "webhooks:\n  - url: https://h/x\n    detail_types: [ECR Image Pull]\n", err: "detail type"},
		{name: "two documents", in: "webhooks: []\n---\nwebhooks: []\n", err: "more than one"},
		{name: "wrong type", in: "webhooks: {url: x}\n", err: "cannot unmarshal"},
		{name: "not yaml", in: "webhooks: [\n", err: "yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseConfig([]byte(tc.in))
			if tc.err != "" {
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want ErrConfig mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestLoadWebhooks(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hook.secret"), []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "events.yaml")
	if err := os.WriteFile(cfg, []byte(`
webhooks:
  - url: https://siem.example.com/lading
    name: siem
    secret_env: SIEM_SECRET
    detail_types: ["Inspector2 Finding"]
  - url: https://user:pw@hooks.example.com/b
    secret_file: hook.secret
  - url: https://hooks.example.com/c
    secret: literal
`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SIEM_SECRET": "from-env"}
	got, err := LoadWebhooks(Settings{
		URLs:       []string{"http://127.0.0.1:9000/a", "http://127.0.0.1:9001/a"},
		Secret:     "flag-secret",
		ConfigFile: cfg,
	}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := []Webhook{
		{Name: "http://127.0.0.1:9000/a", URL: "http://127.0.0.1:9000/a", Secret: "flag-secret"},
		{Name: "http://127.0.0.1:9001/a", URL: "http://127.0.0.1:9001/a", Secret: "flag-secret"},
		{Name: "siem", URL: "https://siem.example.com/lading", Secret: "from-env", DetailTypes: []string{"Inspector2 Finding"}},
		{Name: "https://user:xxxxx@hooks.example.com/b", URL: "https://user:pw@hooks.example.com/b", Secret: "from-file"},
		{Name: "https://hooks.example.com/c", URL: "https://hooks.example.com/c", Secret: "literal"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}

	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name string
		s    Settings
		err  string
	}{
		{"bad flag url", Settings{URLs: []string{"127.0.0.1:9000"}}, "--event-webhook"},
		{"same url twice", Settings{URLs: []string{"http://h/a", "http://h/a"}}, "two webhooks"},
		{"flag and file clash", Settings{URLs: []string{"https://hooks.example.com/c"}, ConfigFile: write("clash.yaml", "webhooks: [{url: 'https://hooks.example.com/c'}]")}, "two webhooks"},
		{"missing file", Settings{ConfigFile: filepath.Join(dir, "nope.yaml")}, "no such file"},
		{"unset env", Settings{ConfigFile: write("env.yaml", "webhooks: [{url: 'https://h/x', secret_env: NOT_SET}]")}, "NOT_SET"},
		{"missing secret file", Settings{ConfigFile: write("sf.yaml", "webhooks: [{url: 'https://h/x', secret_file: missing}]")}, "secret_file"},
		{"empty secret file", Settings{ConfigFile: write("esf.yaml", "webhooks: [{url: 'https://h/x', secret_file: empty}]")}, "empty"},
		{"too large", Settings{ConfigFile: write("big.yaml", "# "+strings.Repeat("x", maxConfigSize))}, "larger"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "empty secret file" {
				write("empty", "\n")
			}
			_, err := LoadWebhooks(tc.s, func(k string) string { return env[k] })
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.err)
			}
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	for _, seed := range []string{
		"",
		"webhooks: []\n",
		"webhooks:\n  - url: https://siem.example.com/lading\n    name: siem\n    secret_env: S\n    detail_types: [\"Inspector2 Finding\"]\n",
		`{"webhooks":[{"url":"http://127.0.0.1:9/x","secret":"k"}]}`,
		"webhooks: &a [*a]\n",
		"a: &a [*a, *a, *a]\nb: &b [*a, *a, *a]\n",
		"webhooks:\n  - url: 'http:///x'\n",
		"webhooks: [{url: https://h/x, secret: a, secret_file: b}]\n",
		"--- \n...\n--- \n",
		"webhooks: !!binary aGVsbG8=\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error not wrapping ErrConfig: %v", err)
			}
			return
		}
		// Whatever parses is a usable configuration, and writing it out gives it back.
		for i, w := range cfg.Webhooks {
			if err := checkURL(w.URL); err != nil {
				t.Fatalf("webhooks[%d] accepted with %v", i, err)
			}
			if err := checkDetailTypes(w.DetailTypes); err != nil {
				t.Fatalf("webhooks[%d] accepted with %v", i, err)
			}
		}
		out, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatalf("marshal accepted config: %v", err)
		}
		again, err := ParseConfig(out)
		if err != nil {
			t.Fatalf("reparse %q: %v", out, err)
		}
		if len(again.Webhooks) != len(cfg.Webhooks) {
			t.Fatalf("reparse has %d webhooks, want %d", len(again.Webhooks), len(cfg.Webhooks))
		}
		for i := range cfg.Webhooks {
			a, b := cfg.Webhooks[i], again.Webhooks[i]
			if a.Name != b.Name || a.URL != b.URL || a.Secret != b.Secret || a.SecretEnv != b.SecretEnv ||
				a.SecretFile != b.SecretFile || !slices.Equal(a.DetailTypes, b.DetailTypes) {
				t.Fatalf("round trip changed webhooks[%d]: %+v -> %+v", i, a, b)
			}
		}
	})
}
