package installed

import "testing"

func TestUpstreamVersion(t *testing.T) {
	tests := []struct {
		p    Package
		want string
	}{
		{Package{Version: "1:1.2.13.dfsg-1", Release: "1", PackageManager: ManagerOS}, "1.2.13.dfsg"},
		{Package{Version: "3.0.11-1~deb12u2", Release: "1~deb12u2", PackageManager: ManagerOS}, "3.0.11"},
		{Package{Version: "1.36.1-r29", Release: "r29", PackageManager: ManagerOS}, "1.36.1"},
		{Package{Version: "2:1.0", PackageManager: ManagerOS}, "1.0"},
		// Only OS versions have epoch and release parts; a language version is kept whole.
		{Package{Version: "1:2.0-1", Release: "1", PackageManager: ManagerNPM}, "1:2.0-1"},
	}
	for _, tt := range tests {
		if got := tt.p.UpstreamVersion(); got != tt.want {
			t.Errorf("%+v: UpstreamVersion() = %q, want %q", tt.p, got, tt.want)
		}
	}
}
