package blob

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
)

// CopyOptions tune Copy.
type CopyOptions struct {
	// Verify re-reads every blob the destination already held and checks it against its
	// digest, instead of trusting a blob of the right size (which the destination's own
	// commit verified when it was written).
	Verify bool
	// Progress, if set, is told of each blob as it is done: copied, or found already there.
	Progress func(f File, copied bool)
}

// CopyReport says what Copy did.
type CopyReport struct {
	Copied, Present           int
	CopiedBytes, PresentBytes int64
}

// ErrBlobDiffers is a destination blob whose size or content is not its digest's.
var ErrBlobDiffers = errors.New("destination blob differs from its digest")

// Copy copies every committed blob of src into dst, each through dst's upload path, so that
// it is checked against its digest before it is visible there, whatever the driver. A blob dst
// already holds is left as it is, so an interrupted copy resumes where it stopped and a
// second run copies only what was committed since. Upload sessions are not copied.
func Copy(ctx context.Context, dst, src *Store, o CopyOptions) (CopyReport, error) {
	var rep CopyReport
	err := src.WalkBlobs(ctx, func(f File) error {
		size, err := dst.Stat(ctx, f.Digest)
		switch {
		case err == nil:
			if size != f.Size {
				return fmt.Errorf("%s: %d bytes, %d at the source: %w", f.Digest, size, f.Size, ErrBlobDiffers)
			}
			if o.Verify {
				if err := verifyBlob(ctx, dst, f.Digest); err != nil {
					return err
				}
			}
			rep.Present++
			rep.PresentBytes += f.Size
		case errors.Is(err, ErrNotFound):
			if err := copyBlob(ctx, dst, src, f); err != nil {
				return err
			}
			rep.Copied++
			rep.CopiedBytes += f.Size
		default:
			return fmt.Errorf("%s: %w", f.Digest, err)
		}
		if o.Progress != nil {
			o.Progress(f, err != nil)
		}
		return nil
	})
	return rep, err
}

func copyBlob(ctx context.Context, dst, src *Store, f File) (err error) {
	r, err := src.Open(ctx, f.Digest)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Digest, err)
	}
	defer r.Close()
	id, err := dst.NewUpload(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Digest, err)
	}
	defer func() {
		if err != nil {
			// The session would otherwise wait for garbage collection; the copy's error
			// is what the caller needs, a failed cancel adds nothing to it.
			_ = dst.Cancel(context.WithoutCancel(ctx), id)
		}
	}()
	if _, err := dst.Append(ctx, id, 0, r); err != nil {
		return fmt.Errorf("%s: %w", f.Digest, err)
	}
	if _, err := dst.Commit(ctx, id, f.Digest); err != nil {
		return fmt.Errorf("%s: %w", f.Digest, err)
	}
	return nil
}

func verifyBlob(ctx context.Context, s *Store, d digest.Digest) error {
	r, err := s.Open(ctx, d)
	if err != nil {
		return fmt.Errorf("%s: %w", d, err)
	}
	defer r.Close()
	v := d.Verifier()
	if _, err := io.Copy(v, r); err != nil {
		return fmt.Errorf("%s: read back: %w", d, err)
	}
	if !v.Verified() {
		return fmt.Errorf("%s: %w", d, ErrBlobDiffers)
	}
	return nil
}
