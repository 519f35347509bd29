package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"strings"
)

// jsonIndent is the indentation of Lading's JSON reports.
const jsonIndent = "    "

// encodeListStreamed writes v as a json.Encoder with SetIndent("", jsonIndent) writes it, but
// encodes the elements of list (a slice inside v, which set replaces) one at a time: a report
// of thousands of findings is written without the two or three whole copies of its text that
// the encoder builds (marshalled, then indented, each in a buffer that grows by doubling). v
// is encoded with list cut to its first element, whose text is found in it and replaced by
// every element's; set(list) is called again before returning.
func encodeListStreamed[T any](w io.Writer, v any, list []T, set func([]T)) error {
	if len(list) < 2 {
		return encodeIndented(w, v)
	}
	set(list[:1])
	defer set(list)
	envelope, err := json.MarshalIndent(v, "", jsonIndent)
	if err != nil {
		return err
	}
	// The first element sits at some depth of the envelope, right after its list's "[": the
	// depth whose indentation makes "[", a new line and the element's text appear exactly once.
	var first []byte
	at, prefix := -1, ""
	for depth := 1; depth <= 8 && at < 0; depth++ {
		prefix = strings.Repeat(jsonIndent, depth)
		if first, err = json.MarshalIndent(list[0], prefix, jsonIndent); err != nil {
			return err
		}
		opening := append([]byte("[\n"+prefix), first...)
		if bytes.Count(envelope, opening) == 1 {
			at = bytes.Index(envelope, opening) + len(opening) - len(first)
		}
	}
	if at < 0 {
		// Not found once (an element's text repeated elsewhere): the whole report at once.
		set(list)
		return encodeIndented(w, v)
	}
	bw := bufio.NewWriter(w)
	bw.Write(envelope[:at+len(first)])
	// An encoder into one buffer, reset for each element: its text is MarshalIndent's and a
	// new line, in buffers used again rather than two new ones an element.
	var elem bytes.Buffer
	enc := json.NewEncoder(&elem)
	enc.SetIndent(prefix, jsonIndent)
	sep := ",\n" + prefix
	for _, e := range list[1:] {
		elem.Reset()
		if err := enc.Encode(e); err != nil {
			return err
		}
		bw.WriteString(sep)
		bw.Write(bytes.TrimSuffix(elem.Bytes(), []byte{'\n'}))
	}
	bw.Write(envelope[at+len(first):])
	bw.WriteByte('\n')
	return bw.Flush() // bufio keeps the first write error and returns it here
}

func encodeIndented(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", jsonIndent)
	return enc.Encode(v)
}
