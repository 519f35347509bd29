package registry

import (
	"errors"
	"strings"
	"testing"

	"github.com/lading-registry/lading/internal/store"
)

const (
	dgA = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
	dgB = "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
)

func TestParseManifest(t *testing.T) {
	image := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
		"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + dgA + `","size":2},
		"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"` + dgB + `","size":5},
		          {"mediaType":"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip","digest":"` + dgA + `","size":9}],
		"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + dgB + `","size":3}}`
	index := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
		"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + dgA + `","size":7,
		"platform":{"os":"linux","architecture":"arm64","variant":"v8"}}]}`
	docker := `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
		"config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"` + dgA + `","size":2},"layers":[]}`

	t.Run("image", func(t *testing.T) {
		p, err := ParseManifest(MediaTypeOCIManifest, []byte(image))
		if err != nil {
			t.Fatal(err)
		}
		if p.Subject != dgB || p.ConfigDigest != dgA || len(p.References) != 3 {
			t.Fatalf("%+v", p)
		}
		if !p.References[1].Required || p.References[2].Required {
			t.Fatalf("non-distributable layer must not be required: %+v", p.References)
		}
	})
	t.Run("index", func(t *testing.T) {
		p, err := ParseManifest("", []byte(index))
		if err != nil {
			t.Fatal(err)
		}
		if !p.IsIndex() || len(p.References) != 1 || p.References[0].Kind != store.RefManifest || p.References[0].Platform != "linux/arm64/v8" {
			t.Fatalf("%+v", p)
		}
	})
	t.Run("docker", func(t *testing.T) {
		if _, err := ParseManifest(MediaTypeDockerManifest, []byte(docker)); err != nil {
			t.Fatal(err)
		}
	})
	for _, tc := range []struct {
		name, contentType, body string
		unsupported             bool
	}{
		{"not json", MediaTypeOCIManifest, "{", false},
		{"type mismatch", MediaTypeOCIIndex, image, false},
		{"schema 1", "", `{"schemaVersion":1}`, false},
		{"no config", MediaTypeOCIManifest, `{"schemaVersion":2,"layers":[]}`, false},
		{"bad digest", MediaTypeOCIManifest, strings.Replace(image, dgB, "sha256:zz", 1), false},
		{"index with layers", MediaTypeOCIIndex, `{"schemaVersion":2,"manifests":[],"layers":[]}`, false},
		{"empty config without artifactType", MediaTypeOCIManifest, `{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"` + dgA + `","size":2},"layers":[]}`, false},
		{"unknown type", "application/x-unknown", `{"schemaVersion":2}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseManifest(tc.contentType, []byte(tc.body))
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.unsupported != errors.Is(err, ErrUnsupportedMediaType) || tc.unsupported == errors.Is(err, ErrInvalidManifest) {
				t.Fatalf("wrong error class: %v", err)
			}
		})
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add(MediaTypeOCIManifest, `{"schemaVersion":2,"config":{"mediaType":"a","digest":"`+dgA+`","size":1},"layers":[{"mediaType":"b","digest":"`+dgB+`","size":2}]}`)
	f.Add(MediaTypeOCIIndex, `{"schemaVersion":2,"manifests":[{"mediaType":"a","digest":"`+dgA+`","size":1,"platform":{"os":"linux","architecture":"amd64"}}]}`)
	f.Add(MediaTypeDockerList, `{"schemaVersion":2,"manifests":[]}`)
	f.Add("", `{"schemaVersion":2,"subject":{"mediaType":"a","digest":"`+dgA+`","size":1},"config":{"mediaType":"a","digest":"`+dgA+`","size":1}}`)
	f.Fuzz(func(t *testing.T, contentType, body string) {
		p, err := ParseManifest(contentType, []byte(body))
		if err != nil {
			if !errors.Is(err, ErrInvalidManifest) && !errors.Is(err, ErrUnsupportedMediaType) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		for _, r := range p.References {
			if !strings.Contains(r.Digest, ":") || r.Size < 0 {
				t.Fatalf("bad reference %+v", r)
			}
			if p.IsIndex() != (r.Kind == store.RefManifest) {
				t.Fatalf("reference kind %s in %s", r.Kind, p.MediaType)
			}
		}
	})
}
