package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// scanningPolicySetting holds the registry scanning configuration as JSON in the settings table.
const scanningPolicySetting = "scanning.registry_policy"

// ScanningPolicy returns the registry scanning configuration, or the default (basic scanning, no
// rules) when none was ever stored.
func (db *DB) ScanningPolicy(ctx context.Context) (policy.Policy, error) {
	v, err := db.Setting(ctx, scanningPolicySetting)
	if errors.Is(err, store.ErrNotFound) {
		return policy.DefaultPolicy(), nil
	}
	if err != nil {
		return policy.Policy{}, fmt.Errorf("read scanning policy: %w", err)
	}
	var p policy.Policy
	if err := json.Unmarshal([]byte(v), &p); err != nil {
		return policy.Policy{}, fmt.Errorf("decode scanning policy: %w", err)
	}
	if p.Rules == nil {
		p.Rules = []policy.Rule{}
	}
	return p, nil
}

// PutScanningPolicy replaces the registry scanning configuration.
func (db *DB) PutScanningPolicy(ctx context.Context, p policy.Policy) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := db.PutSetting(ctx, scanningPolicySetting, string(b)); err != nil {
		return fmt.Errorf("store scanning policy: %w", err)
	}
	return nil
}
