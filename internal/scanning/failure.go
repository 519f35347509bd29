package scanning

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"

	"github.com/lading-registry/lading/internal/scanning/pipeline"
)

// ErrBadImage wraps every reason an image cannot be scanned at all (as opposed to a store or
// I/O failure worth retrying).
var ErrBadImage = errors.New("image cannot be scanned")

// Descriptions of a FAILED scan, as API clients see them (imageScanStatus.description). They
// are stable: a client may match on them. The real error goes to the log only.
const (
	DescBadManifest = "UnsupportedImageError: The image manifest could not be read."
	DescBadConfig   = "UnsupportedImageError: The image configuration could not be read."
	// descBadLayer and descDamagedLayer take the layer digest.
	descBadLayer     = "UnsupportedImageError: Layer %s is corrupt or in an unsupported format."
	descDamagedLayer = "UnsupportedImageError: Layer %s is damaged in the registry's storage; push the image again."
	// descTimeout takes the scan timeout.
	descTimeout = "the scan did not finish within %s"
	// descInternal takes the id of the log record holding the error.
	descInternal = "The scan failed: internal error (id %s)"
)

// imageFault is an ErrBadImage with the description clients are shown.
type imageFault struct {
	desc string
	err  error
}

func badImage(desc string, err error) error { return &imageFault{desc: desc, err: err} }

func (e *imageFault) Error() string { return ErrBadImage.Error() + ": " + e.err.Error() }

func (e *imageFault) Unwrap() []error { return []error{ErrBadImage, e.err} }

// layerFault makes a layer the pipeline could not read as a layer the image's fault.
func layerFault(err error) error {
	if le, ok := errors.AsType[*pipeline.LayerError](err); ok && errors.Is(err, pipeline.ErrUnreadableLayer) {
		return badImage(fmt.Sprintf(descBadLayer, le.Digest), err)
	}
	return err
}

// describeFailure logs why a scan failed and returns what clients are told: the image's fault
// or the timeout in stable words, anything else as an internal error with an id that finds
// the log record (scan_error_id) holding the real error, which may name paths, hosts or
// queries that are not the client's to read.
func (s *Service) describeFailure(log *slog.Logger, err error) string {
	if fault, ok := errors.AsType[*imageFault](err); ok {
		log.Warn("scan failed", "err", err)
		return fault.desc
	}
	if errors.Is(err, context.DeadlineExceeded) {
		desc := fmt.Sprintf(descTimeout, s.cfg.ScanTimeout)
		log.Warn("scan failed", "err", desc)
		return desc
	}
	id := newErrorID()
	log.Error("scan failed", "scan_error_id", id, "err", err)
	return fmt.Sprintf(descInternal, id)
}

// newErrorID is a short random id: unique enough to find one log record among a node's.
func newErrorID() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b[:])
}
