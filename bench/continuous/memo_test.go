package main

import (
	"hash/maphash"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/inventory/installed"
	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// set makes field v non-zero, unlike any value the test starts from.
func set(t *testing.T, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		v.SetString(v.String() + "changed")
	case reflect.Int:
		v.SetInt(v.Int() + 7)
	case reflect.Slice:
		v.Set(reflect.Append(v, reflect.New(v.Type().Elem()).Elem()))
	default:
		t.Fatalf("no change written for a field of kind %s: write one here and in templateKey", v.Kind())
	}
}

func TestTemplateKeyTellsEveryField(t *testing.T) {
	seeds := [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}
	own := []string{"sha256:own0", "sha256:own1"}
	base := func() match.Finding {
		return match.Finding{VulnerabilityID: "CVE-1", Packages: []match.VulnerablePackage{
			{Name: "a", Version: "1", Layer: "sha256:base", LanguagePackages: []installed.LanguagePackage{{Name: "l"}}},
			{Name: "b", Version: "2", Layer: own[1]},
		}}
	}
	key := templateKey(seeds, base(), own)
	typ := reflect.TypeFor[match.VulnerablePackage]()
	for i := range typ.NumField() {
		f := base()
		set(t, reflect.ValueOf(&f.Packages[0]).Elem().Field(i))
		if templateKey(seeds, f, own) == key {
			t.Errorf("VulnerablePackage.%s changed, same key", typ.Field(i).Name)
		}
	}
	lt := reflect.TypeFor[installed.LanguagePackage]()
	for i := range lt.NumField() {
		f := base()
		set(t, reflect.ValueOf(&f.Packages[0].LanguagePackages[0]).Elem().Field(i))
		if templateKey(seeds, f, own) == key {
			t.Errorf("LanguagePackage.%s changed, same key", lt.Field(i).Name)
		}
	}
	f := base()
	f.VulnerabilityID = "CVE-2"
	if templateKey(seeds, f, own) == key {
		t.Error("another vulnerability, same key")
	}
	f = base()
	f.Packages = f.Packages[:1]
	if templateKey(seeds, f, own) == key {
		t.Error("a package less, same key")
	}
	// Another image of the repository: its own layers have other digests, the key is the same.
	next := []string{"sha256:next0", "sha256:next1"}
	f = base()
	f.Packages[1].Layer = next[1]
	if templateKey(seeds, f, next) != key {
		t.Error("the same packages in the next image's own layer: another key")
	}
	f.Packages[1].Layer = next[0]
	if templateKey(seeds, f, next) == key {
		t.Error("the package in another of the image's own layers: same key")
	}
}

// TestTemplateFindingAsSnapshot prepares the same finding for three images of a repository, the
// later two from the first one's template, and compares each with what Snapshot and the store's
// split make of it alone.
func TestTemplateFindingAsSnapshot(t *testing.T) {
	l := newLoader(nil)
	digest := func(c string) string { return "sha256:" + strings.Repeat(c, 64)[:64] }
	origin := l.origin
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	score := 9.8
	matchOf := func(own []string) match.Finding {
		return match.Finding{VulnerabilityID: "CVE-2021-44228", Title: "CVE-2021-44228 - log4j-core", Severity: "CRITICAL", Score: &score,
			Description: "Log4Shell", Source: "GHSA", Packages: []match.VulnerablePackage{
				{Name: "org.apache.logging.log4j:log4j-core", Version: "2.14.1", Ecosystem: "Maven", PackageManager: "JAR",
					FilePath: "/var/lib/neo4j/lib/log4j-core-2.14.1.jar", Layer: own[1], CreatedBy: "COPY lib /var/lib/neo4j/lib",
					FixedInVersion: "2.15.0"},
				{Name: "openssl", Version: "1.1.1n", Ecosystem: "Debian:11", PackageManager: "OS", FilePath: "/var/lib/dpkg/status",
					Layer: digest("b")},
			}}
	}
	info := scanning.ImageInfo{Architecture: "amd64", Platform: "DEBIAN_11"}
	alone := func(repo, dgst string, m match.Finding) (store.Finding, *storedDetail) {
		fs, err := scanning.Snapshot(origin, repo, dgst, policy.ScanTypeEnhanced, []match.Finding{m}, info, now)
		if err != nil || len(fs) != 1 {
			t.Fatalf("snapshot: %v, %d findings", err, len(fs))
		}
		d, err := l.storeDetail(fs[0].Detail)
		if err != nil {
			t.Fatal(err)
		}
		return fs[0], d
	}
	tmpls := newFindingTemplates(l.seeds)
	for i, c := range []string{"1", "2", "3"} {
		own := []string{digest("e" + c), digest("f" + c)}
		img := digest("a" + c)
		m := matchOf(own)
		want, wantDetail := alone("team/app", img, m)
		got, gotDetail, err := tmpls.finding(m, img, own, now, origin, func(m match.Finding) (store.Finding, error) {
			f, _ := alone("team/app", img, m)
			return f, nil
		}, l.storeDetail)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && tmpls.split != 1 {
			t.Fatalf("image %d: %d findings split, want the first image's only", i, tmpls.split)
		}
		want.Detail, got.Detail = nil, nil
		if !reflect.DeepEqual(got, want) {
			t.Errorf("image %d: finding\n%+v\nwant\n%+v", i, got, want)
		}
		if !reflect.DeepEqual(gotDetail, wantDetail) {
			t.Errorf("image %d: detail\n%+v\nwant\n%+v", i, gotDetail, wantDetail)
		}
	}
}
