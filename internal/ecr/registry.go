package ecr

import (
	"context"
	"encoding/base64"
)

func (h *Handler) getAuthorizationToken(ctx context.Context, c *call, body []byte) (any, error) {
	var in struct {
		RegistryIDs []string `json:"registryIds"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	v := &validator{}
	v.list("registryIds", len(in.RegistryIDs), in.RegistryIDs != nil, false, 1, 10)
	for i := range in.RegistryIDs {
		v.str("registryIds."+itoa(i+1)+".member", &in.RegistryIDs[i], true, 0, -1, registryIDPattern())
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	for i := range in.RegistryIDs {
		if err := h.checkRegistry(&in.RegistryIDs[i]); err != nil {
			return nil, err
		}
	}
	token, exp, err := h.auth.IssueToken(ctx, c.principal)
	if err != nil {
		return nil, err
	}
	type authData struct {
		AuthorizationToken string `json:"authorizationToken"`
		ExpiresAt          epoch  `json:"expiresAt"`
		ProxyEndpoint      string `json:"proxyEndpoint"`
	}
	entry := authData{
		// The AWS CLI splits the decoded token at ':' into exactly two parts; tokens hold none.
		AuthorizationToken: base64.StdEncoding.EncodeToString([]byte("AWS:" + token)),
		ExpiresAt:          epoch(exp),
		ProxyEndpoint:      c.endpoint(),
	}
	n := max(1, len(in.RegistryIDs))
	out := make([]authData, n)
	for i := range out {
		out[i] = entry
	}
	return map[string]any{"authorizationData": out}, nil
}

func (h *Handler) describeRegistry(ctx context.Context, _ *call, body []byte) (any, error) {
	var in struct{}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	// Lading replicates nowhere: the configuration has no rules.
	return map[string]any{
		"registryId":               h.cfg.RegistryID,
		"replicationConfiguration": map[string]any{"rules": []any{}},
	}, nil
}
