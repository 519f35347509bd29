package main

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The apt-like image of issue 11 point 5: unlike big-1GiB, most of it is real, compressible
// content installed by apt (a JDK, gcc/g++, LLVM, Python, perl, git: hundreds of ELF
// executables and shared libraries), a hundred jars and Go binaries.
const (
	aptName   = "apt-like"
	aptRecipe = "a1"
	// aptPackages are what apt installs on the Debian 12 minbase (debootstrap --include).
	aptPackages = "openjdk-17-jdk-headless,gcc,g++,llvm,python3,perl,git"
	aptJars     = 100
)

var aptTag = name.MustParseReference("bench/apt-like:1.0.0").(name.Tag)

// aptRootfs returns the debootstrapped tree: -apt-rootfs, or CACHE/apt-rootfs made with
// debootstrap (from Debian's own repositories; about 20 minutes and 1.4 GiB) when missing.
func (b *bench) aptRootfs(ctx context.Context) (string, error) {
	if b.cfg.aptRootfs != "" {
		return b.cfg.aptRootfs, nil
	}
	if b.cfg.cacheDir == "" {
		return "", errors.New("needs -apt-rootfs DIR or -cache DIR (to keep the debootstrapped tree)")
	}
	dir := filepath.Join(b.cfg.cacheDir, "apt-rootfs")
	if _, err := os.Stat(filepath.Join(dir, "var", "lib", "dpkg", "status")); err == nil {
		return dir, nil
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return "", errors.New("debootstrap is not installed (apt-get install debootstrap), and no -apt-rootfs given")
	}
	progress("debootstrap bookworm with %s into %s (about 20 minutes)", aptPackages, dir)
	if _, err := output(ctx, "", nil, "debootstrap", "--variant=minbase", "--include="+aptPackages, "bookworm", dir, "http://deb.debian.org/debian"); err != nil {
		return "", fmt.Errorf("debootstrap: %w", err)
	}
	return dir, nil
}

// aptImage returns the apt-like image, built from the rootfs (or taken from the cache).
func (b *bench) aptImage(ctx context.Context) (scanImage, error) {
	rootfs, err := b.aptRootfs(ctx)
	if err != nil {
		return scanImage{}, err
	}
	dir := filepath.Join(b.work, "images")
	if b.cfg.cacheDir != "" {
		dir = b.cfg.cacheDir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return scanImage{}, err
	}
	archive := filepath.Join(dir, aptName+"-"+aptRecipe+".tar")
	infoPath := filepath.Join(dir, aptName+"-"+aptRecipe+".json")
	if raw, err := os.ReadFile(infoPath); err == nil {
		var info bigImageInfo
		if json.Unmarshal(raw, &info) == nil && info.Recipe == aptRecipe {
			if st, err := os.Stat(archive); err == nil && st.Size() == info.ArchiveBytes {
				progress("reusing %s", archive)
				b.aptInfo = info
				return scanImage{name: aptName, path: archive, size: st.Size(), note: "debootstrap + apt packages, jars, Go binaries (cached)"}, nil
			}
		}
	}
	progress("building the apt-like image from %s", rootfs)
	start := time.Now()
	info, err := b.buildApt(ctx, rootfs, archive)
	if err != nil {
		_ = os.Remove(archive)
		return scanImage{}, err
	}
	info.BuildTime = time.Since(start).Seconds()
	raw, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return scanImage{}, err
	}
	if err := os.WriteFile(infoPath, raw, 0o644); err != nil {
		return scanImage{}, err
	}
	b.aptInfo = info
	progress("built %s: %d MiB of layers (%d MiB compressed) in %.0f s", archive, info.TarBytes>>20, info.GzBytes>>20, info.BuildTime)
	return scanImage{name: aptName, path: archive, size: info.ArchiveBytes, note: "debootstrap + apt packages, jars, Go binaries"}, nil
}

// buildApt writes the image: 1. the rootfs (Debian 12 minbase and the apt packages);
// 2. aptJars jars under /opt/app/lib, copies of the real jars of artifacts/java under
// numbered names; 3. the Go binaries gin163 and textnet in /usr/local/bin and /opt/app/bin.
func (b *bench) buildApt(ctx context.Context, rootfs, archive string) (bigImageInfo, error) {
	info := bigImageInfo{Recipe: aptRecipe, Path: archive}
	art := filepath.Join(b.cfg.shared, "artifacts")
	layerDir, err := os.MkdirTemp(filepath.Dir(archive), "apt-layers-")
	if err != nil {
		return info, err
	}
	defer os.RemoveAll(layerDir)
	var jars []string
	for _, sub := range []string{"java", "java/nested"} {
		found, err := filepath.Glob(filepath.Join(art, sub, "*.jar"))
		if err != nil {
			return info, err
		}
		jars = append(jars, found...)
	}
	if len(jars) == 0 {
		return info, fmt.Errorf("no jars in %s", filepath.Join(art, "java"))
	}
	steps := []struct {
		createdBy string
		write     func(l *layerWriter) error
	}{
		{"RUN /bin/sh -c apt-get install -y " + strings.ReplaceAll(aptPackages, ",", " ") + " # bench: debootstrap --variant=minbase", func(l *layerWriter) error {
			return l.rootfs(ctx, rootfs)
		}},
		{"COPY lib/ /opt/app/lib/ # bench: jars", func(l *layerWriter) error {
			for i := range aptJars {
				j := jars[i%len(jars)]
				if err := l.copyFile(fmt.Sprintf("opt/app/lib/%03d-%s", i, filepath.Base(j)), j, 0o644); err != nil {
					return err
				}
			}
			return nil
		}},
		{"COPY --from=build /out/ / # bench: go binaries", func(l *layerWriter) error {
			for _, dst := range []string{"usr/local/bin", "opt/app/bin"} {
				for _, bin := range []string{"gin163", "textnet"} {
					if err := l.copyFile(path.Join(dst, bin), filepath.Join(art, "go", bin), 0o755); err != nil {
						return err
					}
				}
			}
			return nil
		}},
	}
	var adds []mutate.Addendum
	for i, s := range steps {
		if err := ctx.Err(); err != nil {
			return info, err
		}
		l, err := newLayerWriter(filepath.Join(layerDir, fmt.Sprintf("layer-%d.tar.gz", i+1)))
		if err != nil {
			return info, err
		}
		if err := s.write(l); err != nil {
			l.abort()
			return info, fmt.Errorf("layer %d: %w", i+1, err)
		}
		fl, err := l.close()
		if err != nil {
			return info, fmt.Errorf("layer %d: %w", i+1, err)
		}
		layer, err := partial.CompressedToLayer(fl)
		if err != nil {
			return info, err
		}
		adds = append(adds, mutate.Addendum{Layer: layer, History: v1.History{CreatedBy: s.createdBy, Created: v1.Time{Time: fixedTime}}})
		info.Layers = append(info.Layers, layerInfo{CreatedBy: s.createdBy, GzBytes: fl.size, TarBytes: fl.tarSize, Files: l.files})
		progress("apt-like layer %d: %d files, %d MiB (%d MiB gzip)", i+1, l.files, fl.tarSize>>20, fl.size>>20)
	}
	cfgImg, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: "amd64", OS: "linux", Created: v1.Time{Time: fixedTime},
		Config: v1.Config{Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, Cmd: []string{"/usr/local/bin/gin163"}},
	})
	if err != nil {
		return info, err
	}
	img, err := mutate.Append(cfgImg, adds...)
	if err != nil {
		return info, err
	}
	if err := tarball.WriteToFile(archive, aptTag, img); err != nil {
		return info, err
	}
	st, err := os.Stat(archive)
	if err != nil {
		return info, err
	}
	info.ArchiveBytes = st.Size()
	for _, l := range info.Layers {
		info.TarBytes += l.TarBytes
		info.GzBytes += l.GzBytes
	}
	return info, nil
}

// rootfs writes a whole tree: directories, regular files, symbolic links (kept as links) and
// hard links (as tar hard links), in sorted order, as `tar -C root .` of a build would.
func (l *layerWriter) rootfs(ctx context.Context, root string) error {
	type entry struct {
		rel string
		d   fs.DirEntry
	}
	var entries []entry
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		// Pseudo filesystems debootstrap may leave mounted or populated: not image content.
		if d.IsDir() && slices.Contains([]string{"proc", "sys", "dev"}, rel) {
			entries = append(entries, entry{filepath.ToSlash(rel), d})
			return fs.SkipDir
		}
		entries = append(entries, entry{filepath.ToSlash(rel), d})
		return nil
	})
	if err != nil {
		return err
	}
	inodes := map[uint64]string{}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		full := filepath.Join(root, filepath.FromSlash(e.rel))
		st, err := os.Lstat(full)
		if err != nil {
			return err
		}
		mode := int64(st.Mode().Perm())
		switch {
		case st.IsDir():
			l.dirs[e.rel] = true
			if err := l.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: e.rel + "/", Mode: mode, ModTime: fixedTime, Format: tar.FormatPAX}); err != nil {
				return err
			}
		case st.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(full)
			if err != nil {
				return err
			}
			if err := l.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: e.rel, Linkname: target, Mode: 0o777, ModTime: fixedTime, Format: tar.FormatPAX}); err != nil {
				return err
			}
		case st.Mode().IsRegular():
			if ino, nlink := inode(st); nlink > 1 {
				if first, ok := inodes[ino]; ok {
					if err := l.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeLink, Name: e.rel, Linkname: first, Mode: mode, ModTime: fixedTime, Format: tar.FormatPAX}); err != nil {
						return err
					}
					continue
				}
				inodes[ino] = e.rel
			}
			if err := l.copyFile(e.rel, full, mode); err != nil {
				return err
			}
		}
		// Devices, fifos and sockets are left out, as image builders do.
	}
	return nil
}
