package events

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrConfig means the webhook configuration is unusable.
var ErrConfig = errors.New("invalid events configuration")

// maxConfigSize bounds what LoadWebhooks reads from a config file.
const maxConfigSize = 1 << 20

// KnownDetailTypes are the detail types Lading emits, the values a webhook may filter on.
var KnownDetailTypes = []string{DetailTypeImageAction, DetailTypeImageScan, DetailTypeInspectorScan, DetailTypeInspectorFinding, DetailTypeAPICall}

// Webhook is one HTTP endpoint that receives every event (or those of DetailTypes).
type Webhook struct {
	// Name identifies the webhook's delivery cursor across restarts; it defaults to the URL
	// (with any password masked). Renaming a webhook makes it a new one, starting from now.
	Name string
	URL  string
	// Secret keys the HMAC-SHA256 signature of each request; empty sends no signature.
	Secret string
	// DetailTypes, when not empty, limits the webhook to these detail types; when empty, it
	// receives every detail type but the opt-in ones ("AWS API Call via CloudTrail").
	DetailTypes []string
}

// FileConfig is an events config file (--events-config), YAML or JSON:
//
//	webhooks:
//	  - url: https://siem.example.com/lading      # required, http or https
//	    name: siem                                # optional; default: the URL
//	    secret_env: SIEM_WEBHOOK_SECRET           # the secret: one of secret, secret_env, secret_file
//	    detail_types: ["Inspector2 Finding"]      # optional; default: every event but "AWS API Call via CloudTrail"
//	  - url: http://127.0.0.1:9000/hook
//	    secret_file: /etc/lading/hook.secret      # relative paths are relative to the config file
//
// Unknown keys are errors, so that a misspelt key does not silently drop a setting.
type FileConfig struct {
	Webhooks []WebhookConfig `yaml:"webhooks"`
}

// WebhookConfig is one webhook as a config file writes it.
type WebhookConfig struct {
	Name        string   `yaml:"name"`
	URL         string   `yaml:"url"`
	Secret      string   `yaml:"secret"`
	SecretEnv   string   `yaml:"secret_env"`
	SecretFile  string   `yaml:"secret_file"`
	DetailTypes []string `yaml:"detail_types"`
}

// ParseConfig parses and checks an events config file; it does not resolve secrets. An empty
// file configures no webhook.
func ParseConfig(data []byte) (FileConfig, error) {
	var cfg FileConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return FileConfig{}, nil
		}
		return FileConfig{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return FileConfig{}, fmt.Errorf("%w: more than one YAML document", ErrConfig)
	}
	for i, w := range cfg.Webhooks {
		if err := checkURL(w.URL); err != nil {
			return FileConfig{}, fmt.Errorf("%w: webhooks[%d]: %w", ErrConfig, i, err)
		}
		set := 0
		for _, s := range []string{w.Secret, w.SecretEnv, w.SecretFile} {
			if s != "" {
				set++
			}
		}
		if set > 1 {
			return FileConfig{}, fmt.Errorf("%w: webhooks[%d]: give at most one of secret, secret_env, secret_file", ErrConfig, i)
		}
		if err := checkDetailTypes(w.DetailTypes); err != nil {
			return FileConfig{}, fmt.Errorf("%w: webhooks[%d]: %w", ErrConfig, i, err)
		}
	}
	return cfg, nil
}

func checkURL(raw string) error {
	if raw == "" {
		return errors.New("url is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("url %q: scheme must be http or https", u.Redacted())
	}
	if u.Host == "" {
		return fmt.Errorf("url %q: no host", u.Redacted())
	}
	return nil
}

func checkDetailTypes(types []string) error {
	for _, t := range types {
		if !slices.Contains(KnownDetailTypes, t) {
			return fmt.Errorf("detail type %q: want one of %q", t, KnownDetailTypes)
		}
	}
	return nil
}

// defaultName is the URL with any password masked, so that it can be logged.
func defaultName(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Redacted()
}

// Settings are where webhooks come from on the command line.
type Settings struct {
	// URLs are the repeatable --event-webhook flag's values.
	URLs []string
	// Secret signs the webhooks given as URLs: --event-webhook-secret, or the environment
	// variable LADING_EVENT_WEBHOOK_SECRET when the flag is not given. Webhooks that need
	// secrets of their own go in the config file.
	Secret string
	// ConfigFile is --events-config, a FileConfig; empty for none.
	ConfigFile string
}

// SecretEnv is the environment variable that holds Settings.Secret when no flag gives it.
const SecretEnv = "LADING_EVENT_WEBHOOK_SECRET"

// LoadWebhooks resolves the command line's settings and the config file into webhooks,
// reading secrets from the environment (through getenv) and from files. Two webhooks with
// the same name are an error.
func LoadWebhooks(s Settings, getenv func(string) string) ([]Webhook, error) {
	var hooks []Webhook
	for _, raw := range s.URLs {
		if err := checkURL(raw); err != nil {
			return nil, fmt.Errorf("%w: --event-webhook: %w", ErrConfig, err)
		}
		hooks = append(hooks, Webhook{Name: defaultName(raw), URL: raw, Secret: s.Secret})
	}
	if s.ConfigFile != "" {
		fromFile, err := loadFile(s.ConfigFile, getenv)
		if err != nil {
			return nil, err
		}
		hooks = append(hooks, fromFile...)
	}
	if err := checkWebhooks(hooks); err != nil {
		return nil, err
	}
	return hooks, nil
}

func loadFile(path string, getenv func(string) string) ([]Webhook, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("events config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("events config %s: %w", path, err)
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrConfig, path, maxConfigSize)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("events config %s: %w", path, err)
	}
	hooks := make([]Webhook, 0, len(cfg.Webhooks))
	for i, w := range cfg.Webhooks {
		h := Webhook{Name: w.Name, URL: w.URL, Secret: w.Secret, DetailTypes: w.DetailTypes}
		if h.Name == "" {
			h.Name = defaultName(w.URL)
		}
		switch {
		case w.SecretEnv != "":
			h.Secret = getenv(w.SecretEnv)
			if h.Secret == "" {
				return nil, fmt.Errorf("%w: %s: webhooks[%d]: environment variable %s is empty or unset", ErrConfig, path, i, w.SecretEnv)
			}
		case w.SecretFile != "":
			p := w.SecretFile
			if !filepath.IsAbs(p) {
				p = filepath.Join(filepath.Dir(path), p)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: webhooks[%d]: secret_file: %w", ErrConfig, path, i, err)
			}
			h.Secret = strings.TrimRight(string(b), "\r\n")
			if h.Secret == "" {
				return nil, fmt.Errorf("%w: %s: webhooks[%d]: secret_file %s is empty", ErrConfig, path, i, p)
			}
		}
		hooks = append(hooks, h)
	}
	return hooks, nil
}

// checkWebhooks checks webhooks built in code as LoadWebhooks checks configured ones.
func checkWebhooks(hooks []Webhook) error {
	seen := map[string]bool{}
	for _, h := range hooks {
		if h.Name == "" {
			return fmt.Errorf("%w: webhook %s has no name", ErrConfig, defaultName(h.URL))
		}
		if seen[h.Name] {
			return fmt.Errorf("%w: two webhooks are named %q", ErrConfig, h.Name)
		}
		seen[h.Name] = true
		if err := checkURL(h.URL); err != nil {
			return fmt.Errorf("%w: webhook %s: %w", ErrConfig, h.Name, err)
		}
		if err := checkDetailTypes(h.DetailTypes); err != nil {
			return fmt.Errorf("%w: webhook %s: %w", ErrConfig, h.Name, err)
		}
	}
	return nil
}
