package ecr

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"slices"
	"testing"

	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"
)

// sdkOperations lists the operations of the newest ECR model, as methods of the SDK client.
func sdkOperations() []string {
	ctxType := reflect.TypeFor[context.Context]()
	var ops []string
	t := reflect.TypeFor[*ecrsdk.Client]()
	for i := range t.NumMethod() {
		m := t.Method(i)
		// Operations are func(c, ctx, *<Op>Input, ...func(*Options)) (*<Op>Output, error).
		if m.Type.NumIn() == 4 && m.Type.In(1) == ctxType && m.Type.In(2).Kind() == reflect.Pointer &&
			m.Type.In(2).Elem().Name() == m.Name+"Input" {
			ops = append(ops, m.Name)
		}
	}
	return ops
}

// TestDocumentedOperations keeps docs/ecr-api.md true: every operation of the model is listed
// once, those Lading implements as supported or partial, the others as not supported, and
// those indeed answer UnknownOperationException.
func TestDocumentedOperations(t *testing.T) {
	doc, err := os.ReadFile("../../docs/ecr-api.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([A-Za-z]+)` \\| (supported|partial|not supported) \\|")
	status := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		if _, dup := status[m[1]]; dup {
			t.Errorf("%s is listed twice", m[1])
		}
		status[m[1]] = m[2]
	}
	h := newTestHandler(t)
	implemented := map[string]bool{}
	for _, op := range h.Operations() {
		implemented[op] = true
	}
	ops := sdkOperations()
	if len(ops) < 60 {
		t.Fatalf("found only %d SDK operations", len(ops))
	}
	for _, op := range ops {
		st, ok := status[op]
		switch {
		case !ok:
			t.Errorf("%s is not in docs/ecr-api.md", op)
		case implemented[op] && st == "not supported":
			t.Errorf("%s is implemented but documented as not supported", op)
		case !implemented[op] && st != "not supported":
			t.Errorf("%s is documented as %s but not implemented", op, st)
		case !implemented[op]:
			rec := signedCall(t, h, op, []byte("{}"))
			var body map[string]any
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			if rec.Code != 400 || body["__type"] != errUnknownOperation {
				t.Errorf("%s: %d %s, want UnknownOperationException", op, rec.Code, rec.Body.Bytes())
			}
		}
		delete(status, op)
	}
	for op := range status {
		t.Errorf("docs/ecr-api.md lists %s, which the model does not have", op)
	}
	for op := range implemented {
		if !slices.Contains(ops, op) {
			t.Errorf("handler implements %s, which the model does not have", op)
		}
	}
}
