package inspector

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/lading-registry/lading/internal/testserver"
)

// sdkOperations lists the operations of the Inspector2 model, as methods of the SDK client.
func sdkOperations() []reflect.Method {
	ctxType := reflect.TypeFor[context.Context]()
	var ops []reflect.Method
	t := reflect.TypeFor[*inspector2.Client]()
	for i := range t.NumMethod() {
		m := t.Method(i)
		// Operations are func(c, ctx, *<Op>Input, ...func(*Options)) (*<Op>Output, error).
		if m.Type.NumIn() == 4 && m.Type.In(1) == ctxType && m.Type.In(2).Kind() == reflect.Pointer &&
			m.Type.In(2).Elem().Name() == m.Name+"Input" {
			ops = append(ops, m)
		}
	}
	return ops
}

// TestDocumentedOperations keeps docs/inspector-api.md true: every operation of the model is
// listed once, those implemented as supported or partial, the others as not supported; and,
// sending each through the SDK client (its own method and path), the implemented ones reach
// their implementation and the others are answered NotImplementedException naming them.
func TestDocumentedOperations(t *testing.T) {
	doc, err := os.ReadFile("../../docs/inspector-api.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([A-Za-z0-9]+)` \\| (supported|partial|not supported) \\|")
	status := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		if _, dup := status[m[1]]; dup {
			t.Errorf("%s is listed twice", m[1])
		}
		status[m[1]] = m[2]
	}
	h, _ := newTestHandler(t)
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := inspector2.New(inspector2.Options{Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL), Retryer: testserver.SDKRetryer(),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret}, nil
		})})
	// The SDK checks required members before sending; the server is what is tested here.
	noValidation := func(o *inspector2.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			_, _ = s.Initialize.Remove("OperationInputValidation")
			return nil
		})
	}
	implemented := map[string]bool{}
	for _, op := range h.Operations() {
		implemented[op] = true
	}
	ops := sdkOperations()
	if len(ops) < 60 {
		t.Fatalf("found only %d SDK operations", len(ops))
	}
	var names []string
	for _, m := range ops {
		op := m.Name
		names = append(names, op)
		st, ok := status[op]
		switch {
		case !ok:
			t.Errorf("%s is not in docs/inspector-api.md", op)
		case implemented[op] && st == "not supported":
			t.Errorf("%s is implemented but documented as not supported", op)
		case !implemented[op] && st != "not supported":
			t.Errorf("%s is documented as %s but not implemented", op, st)
		}
		delete(status, op)
		if _, ok := h.ops[op]; !ok {
			t.Errorf("%s is not in the operations table", op)
			continue
		}
		in := reflect.New(m.Type.In(2).Elem())
		if f := in.Elem().FieldByName("ResourceArn"); f.IsValid() {
			f.Set(reflect.ValueOf(aws.String("arn:aws:ecr:us-east-1:123456789012:repository/app")))
		}
		res := m.Func.Call([]reflect.Value{reflect.ValueOf(client), reflect.ValueOf(context.Background()), in, reflect.ValueOf(noValidation)})
		err, _ := res[1].Interface().(error)
		var ae smithy.APIError
		gotNotImplemented := errors.As(err, &ae) && ae.ErrorCode() == errNotImplemented
		switch {
		case implemented[op] && (gotNotImplemented || errors.As(err, &ae) && ae.ErrorCode() == errUnknownOperation):
			t.Errorf("%s: the SDK's request did not reach its implementation: %v", op, err)
		case !implemented[op] && (!gotNotImplemented || !strings.Contains(ae.ErrorMessage(), op)):
			t.Errorf("%s: %v, want NotImplementedException naming it", op, err)
		}
	}
	for op := range status {
		t.Errorf("docs/inspector-api.md lists %s, which the model does not have", op)
	}
	for op := range h.ops {
		if !slices.Contains(names, op) {
			t.Errorf("the operations table has %s, which the model does not have", op)
		}
	}
}
