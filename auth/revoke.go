package auth

import (
	"context"
	"strings"
	"time"

	"github.com/credits-dev/credits"
)

// RevokeAPIKey revokes an API key: from now on its secret gets 401. Revoking
// a revoked key changes nothing and returns it as it is; an unknown id is a
// not_found error.
func (a *Authenticator) RevokeAPIKey(ctx context.Context, id string) (APIKey, error) {
	if id == "" || len(id) > 200 || strings.ContainsRune(id, 0) {
		return APIKey{}, credits.NotFound("api key", id)
	}
	k, err := a.store.RevokeAPIKey(ctx, id, a.now().UTC().Truncate(time.Microsecond))
	if err == nil {
		a.keys.forget(id)
	}
	return k, err
}
