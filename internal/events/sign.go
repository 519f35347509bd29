package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Headers of a webhook request.
const (
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the request body, keyed with
	// the webhook's secret. Absent when the webhook has no secret.
	SignatureHeader = "X-Lading-Signature"
	// EventIDHeader carries the envelope id, for receivers to drop the duplicates that
	// at-least-once delivery allows.
	EventIDHeader = "X-Lading-Event-Id"
	// EventTypeHeader carries the envelope's detail-type.
	EventTypeHeader = "X-Lading-Event-Type"
)

const signaturePrefix = "sha256="

// Sign returns the SignatureHeader value for body: "sha256=<hex HMAC-SHA256(secret, body)>".
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return signaturePrefix + hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether header is body's signature under secret, comparing in constant time.
func Verify(secret string, body []byte, header string) bool {
	hexSum, ok := strings.CutPrefix(header, signaturePrefix)
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}
