package php

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/lading-registry/lading/internal/inventory/plugin"
)

func TestInstalledFileRequired(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"srv/php/vendor/composer/installed.json", true},
		{"vendor/composer/installed.json", true},
		{"srv/php/myvendor/composer/installed.json", false},
		{"srv/php/vendor/composer/installed.php", false},
	}
	for _, tt := range tests {
		if got := Installed().FileRequired(plugin.NewFile(tt.path, 0o644, nil)); got != tt.want {
			t.Errorf("FileRequired(%s) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func TestParseInstalled(t *testing.T) {
	tests := []struct {
		name, data string
		want       []string // name@version purl
		wantErr    bool
	}{
		{"Composer 2", `{"packages":[{"name":"monolog/monolog","version":"2.1.0"},{"name":"guzzlehttp/guzzle","version":"v7.4.4"}]}`,
			[]string{"monolog/monolog@2.1.0 pkg:composer/monolog/monolog@2.1.0", "guzzlehttp/guzzle@7.4.4 pkg:composer/guzzlehttp/guzzle@7.4.4"}, false},
		{"Composer 1", `[{"name":"a/b","version":"1.0"},{"name":"no-vendor","version":"1.0"},{"name":"c/d","version":"v"}]`,
			[]string{"a/b@1.0 pkg:composer/a/b@1.0"}, false},
		{"not installed.json", `"packages"`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkgs, err := parseInstalled(bytes.NewReader([]byte(tt.data)))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			var got []string
			for _, p := range pkgs {
				if p.Ecosystem != "Packagist" || p.PackageManager != "COMPOSER" {
					t.Errorf("got %+v", p)
				}
				got = append(got, p.Name+"@"+p.Version+" "+p.PURL)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func FuzzParseInstalled(f *testing.F) {
	f.Add([]byte(`{"packages":[{"name":"monolog/monolog","version":"2.1.0"}],"dev":true}`))
	f.Add([]byte(`[{"name":"a/b","version":"v1.0.0"},{"name":"c","version":{}}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, _ := parseInstalled(bytes.NewReader(data))
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" {
				t.Fatalf("accepted %+v", p)
			}
		}
	})
}
