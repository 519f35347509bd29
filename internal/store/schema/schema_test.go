package schema

import (
	"errors"
	"math"
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   []string
		want    []int
		wantErr bool
	}{
		{"ordered by version, gaps allowed", []string{"m/0010_b.sql", "m/0002_a.sql", "m/0040_c.sql"}, []int{2, 10, 40}, false},
		{"no name", []string{"m/0001.sql"}, nil, true},
		{"not a number", []string{"m/first_a.sql"}, nil, true},
		{"not sql", []string{"m/0001_a.txt"}, nil, true},
		{"duplicate version", []string{"m/0001_a.sql", "m/1_b.sql"}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for _, f := range tc.files {
				fsys[f] = &fstest.MapFile{Data: []byte("SELECT 1;")}
			}
			got, err := Load(fsys, "m")
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want versions %v", got, tc.want)
			}
			for i, m := range got {
				if m.Version != tc.want[i] || m.SQL != "SELECT 1;" {
					t.Fatalf("got %+v, want versions %v", got, tc.want)
				}
			}
		})
	}
}

func TestPending(t *testing.T) {
	all := []Migration{{Version: 1}, {Version: 2}, {Version: 10}}
	for _, tc := range []struct {
		name    string
		applied []int
		upTo    int
		want    []int
		newer   bool
	}{
		{"fresh", nil, math.MaxInt, []int{1, 2, 10}, false},
		{"some applied, out of order", []int{1, 10}, math.MaxInt, []int{2}, false},
		{"stopped early", nil, 2, []int{1, 2}, false},
		{"up to date", []int{1, 2, 10}, math.MaxInt, nil, false},
		{"written by a newer build", []int{1, 2, 10, 11}, math.MaxInt, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			applied := map[int]bool{}
			for _, v := range tc.applied {
				applied[v] = true
			}
			got, err := Pending(all, applied, tc.upTo)
			if errors.Is(err, ErrNewerSchema) != tc.newer || (!tc.newer && err != nil) {
				t.Fatalf("err = %v, want newer %v", err, tc.newer)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %v", got, tc.want)
			}
			for i, m := range got {
				if m.Version != tc.want[i] {
					t.Fatalf("got %+v, want %v", got, tc.want)
				}
			}
		})
	}
}
