package store

import "errors"

// Errors of access keys and permissions policies.
var (
	// ErrAccessKeyNameTaken refuses a second access key with the same name.
	ErrAccessKeyNameTaken = errors.New("an access key with this name exists")
	// ErrRepositoryPolicyNotFound: the repository has no policy.
	ErrRepositoryPolicyNotFound = errors.New("repository policy not found")
	// ErrRegistryPolicyNotFound: the registry has no policy.
	ErrRegistryPolicyNotFound = errors.New("registry policy not found")
)
