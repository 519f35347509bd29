package s3

import (
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		in      string
		want    Config
		wantErr string
	}{
		{in: "s3://b?endpoint=http://127.0.0.1:9000&region=us-east-1",
			want: Config{Bucket: "b", Region: "us-east-1", Endpoint: "http://127.0.0.1:9000", PathStyle: true, PartSize: 8 << 20}},
		{in: "s3://b/reg/istry/?region=eu-west-1&part-size=16777216",
			want: Config{Bucket: "b", Prefix: "reg/istry/", Region: "eu-west-1", PartSize: 16 << 20}},
		{in: "s3://b?endpoint=https://s3.example&path-style=false",
			want: Config{Bucket: "b", Endpoint: "https://s3.example", PartSize: 8 << 20}},
		{in: "file:///tmp", wantErr: "want s3://"},
		{in: "s3://", wantErr: "want s3://"},
		{in: "s3://key:secret@b", wantErr: "want s3://"},
		{in: "s3://b?endpoint=127.0.0.1:9000", wantErr: "endpoint"},
		{in: "s3://b?part-size=1024", wantErr: "part-size"},
		{in: "s3://b?acl=public", wantErr: "unknown parameter"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseURL(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// FuzzParseURL: any --blobs value is refused or gives a bucket, a prefix that is empty or ends
// in "/", and a part size S3 accepts.
func FuzzParseURL(f *testing.F) {
	f.Add("s3://b?endpoint=http://127.0.0.1:9000&region=us-east-1")
	f.Add("s3://b/p?part-size=5242880&path-style=1")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := ParseURL(in)
		if err != nil {
			return
		}
		if c.Bucket == "" || (c.Prefix != "" && !strings.HasSuffix(c.Prefix, "/")) || c.PartSize < minPartSize || c.PartSize > 5<<30 {
			t.Fatalf("%q gave %+v", in, c)
		}
	})
}
