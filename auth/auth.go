// Package auth checks bearer secrets: the admin key, API keys (admin,
// service, read) and workspace session tokens. Secrets are stored only as
// SHA-256 hashes (they are long random strings, so a fast hash is enough)
// and compared in constant time; session tokens are HMAC-signed, expire, and
// name their workspace and member.
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/credits-dev/credits"
)

// Scopes of API keys.
const (
	ScopeAdmin   = "admin"
	ScopeService = "service"
	ScopeRead    = "read"
)

// Principal kinds.
const (
	KindAdminKey = "admin_key"
	KindAPIKey   = "api_key"
	KindSession  = "session"
)

// Secret prefixes say what a secret is at a glance (and to secret scanners).
const (
	prefixAdmin   = "cra_"
	prefixAPIKey  = "crk_"
	prefixSession = "crs_"
)

// Limits.
const (
	MaxSessionTTL     = 24 * time.Hour
	DefaultSessionTTL = time.Hour
	maxSecretLen      = 4096
)

// Principal is who a request acts as.
type Principal struct {
	Kind        string
	Scope       string // admin, service or read; sessions have none
	KeyID       string // API keys
	WorkspaceID string // sessions
	MemberID    string // sessions
}

// Settings keys.
const (
	settingAdminHash  = "admin_key_sha256"
	settingSigningKey = "session_signing_key"
)

// Authenticator checks secrets against a Store.
type Authenticator struct {
	store       Store
	adminHashes []adminHash
	signingKey  []byte
	now         func() time.Time
	keys        keyCache
}

// adminHash is the hash of an admin key, valid until until (zero: always).
type adminHash struct {
	sum   []byte
	until time.Time
}

// Options configure New.
type Options struct {
	// AdminKey is the configured admin key (CREDITS_ADMIN_KEY). Empty: the
	// key generated on the first start is used.
	AdminKey string
	// ExtraAdminKeys stay valid beside AdminKey, for rotation without
	// downtime.
	ExtraAdminKeys []string
	// PreviousAdminKey is the admin key being rotated out
	// (CREDITS_ADMIN_KEY_PREVIOUS): valid beside the current one until
	// PreviousAdminKeyUntil, refused from then on. New refuses it without
	// an expiry: an old key must not stay valid by oversight.
	PreviousAdminKey      string
	PreviousAdminKeyUntil time.Time
	NowFunc               func() time.Time
}

// New prepares an Authenticator. When no admin key is configured and none was
// generated before, it generates one and returns it (to print once); only its
// hash is stored.
func New(ctx context.Context, st Store, opts Options) (*Authenticator, string, error) {
	a := &Authenticator{store: st, now: opts.NowFunc}
	if a.now == nil {
		a.now = time.Now
	}
	var generated string
	if opts.PreviousAdminKey != "" && opts.PreviousAdminKeyUntil.IsZero() {
		return nil, "", credits.Invalid("previous_admin_key_until", "a previous admin key needs the time until which it stays valid")
	}
	if opts.AdminKey != "" {
		a.adminHashes = append(a.adminHashes, adminHash{sum: hash(opts.AdminKey)})
	} else {
		candidate := prefixAdmin + randomString(32)
		stored, err := st.PutSettingIfAbsent(ctx, settingAdminHash, hex.EncodeToString(hash(candidate)))
		if err != nil {
			return nil, "", err
		}
		h, err := hex.DecodeString(stored)
		if err != nil {
			return nil, "", err
		}
		if subtle.ConstantTimeCompare(h, hash(candidate)) == 1 {
			generated = candidate
		}
		a.adminHashes = append(a.adminHashes, adminHash{sum: h})
	}
	for _, k := range opts.ExtraAdminKeys {
		if k != "" {
			a.adminHashes = append(a.adminHashes, adminHash{sum: hash(k)})
		}
	}
	if opts.PreviousAdminKey != "" {
		a.adminHashes = append(a.adminHashes, adminHash{sum: hash(opts.PreviousAdminKey), until: opts.PreviousAdminKeyUntil})
	}
	key, err := st.PutSettingIfAbsent(ctx, settingSigningKey, randomString(48))
	if err != nil {
		return nil, "", err
	}
	a.signingKey = []byte(key)
	return a, generated, nil
}

func hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

func unauthorized(msg string) error { return credits.Errorf(credits.CodeUnauthorized, "%s", msg) }

// Authenticate returns the principal a secret stands for, or an
// unauthorized error.
func (a *Authenticator) Authenticate(ctx context.Context, secret string) (Principal, error) {
	if secret == "" {
		return Principal{}, unauthorized("a bearer secret is required")
	}
	if len(secret) > maxSecretLen {
		return Principal{}, unauthorized("the bearer secret is malformed")
	}
	if strings.HasPrefix(secret, prefixSession) {
		return a.verifySession(secret)
	}
	h := hash(secret)
	if a.isAdmin(h) {
		return Principal{Kind: KindAdminKey, Scope: ScopeAdmin}, nil
	}
	hexHash := hex.EncodeToString(h)
	now := a.now()
	k, ok := a.keys.get(hexHash, now)
	if !ok {
		var err error
		k, err = a.store.LookupAPIKey(ctx, hexHash)
		if err != nil {
			if credits.ErrorCode(err) == credits.CodeNotFound {
				return Principal{}, unauthorized("the bearer secret is not valid")
			}
			return Principal{}, err
		}
		a.keys.put(hexHash, k, now)
	}
	// The lookup was by hash; compare again in constant time so the
	// answer never depends on how much of a wrong secret matched.
	stored, _ := hex.DecodeString(k.Hash)
	if subtle.ConstantTimeCompare(stored, h) != 1 {
		return Principal{}, unauthorized("the bearer secret is not valid")
	}
	if k.RevokedAt != nil {
		return Principal{}, unauthorized("the API key has been revoked")
	}
	return Principal{Kind: KindAPIKey, Scope: k.Scope, KeyID: k.ID}, nil
}

// CreateAPIKey makes an API key and returns it with its secret, which is
// never shown again.
func (a *Authenticator) CreateAPIKey(ctx context.Context, name, scope string) (APIKey, string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return APIKey{}, "", credits.Invalid("name", "name must be 1 to 200 characters")
	}
	switch scope {
	case ScopeAdmin, ScopeService, ScopeRead:
	case "":
		return APIKey{}, "", credits.Invalid("scope", "scope is required: admin, service or read")
	default:
		return APIKey{}, "", credits.Invalid("scope", "unknown scope %q: use admin, service or read", scope)
	}
	secret := prefixAPIKey + randomString(40)
	k := APIKey{ID: "key_" + randomString(20), Name: name, Scope: scope, CreatedAt: a.now().UTC().Truncate(time.Microsecond), Hash: hex.EncodeToString(hash(secret))}
	if err := a.store.CreateAPIKey(ctx, k); err != nil {
		return APIKey{}, "", err
	}
	return k, secret, nil
}

type sessionClaims struct {
	WorkspaceID string `json:"w"`
	MemberID    string `json:"m"`
	ExpiresAt   int64  `json:"e"`
}

// IssueSession signs a session token for one workspace member.
func (a *Authenticator) IssueSession(workspaceID, memberID string, ttl time.Duration) (string, time.Time, error) {
	if memberID == "" || len(memberID) > credits.MaxMemberID {
		return "", time.Time{}, credits.Invalid("member_id", "member_id must be 1 to %d characters", credits.MaxMemberID)
	}
	// The claims are JSON, which would replace invalid UTF-8: the token
	// would name another member than asked (found by FuzzAuthenticate).
	if !utf8.ValidString(memberID) {
		return "", time.Time{}, credits.Invalid("member_id", "member_id must be UTF-8 text")
	}
	if workspaceID == "" || !utf8.ValidString(workspaceID) {
		return "", time.Time{}, credits.Invalid("workspace_id", "the workspace id must be UTF-8 text")
	}
	if ttl <= 0 || ttl > MaxSessionTTL {
		return "", time.Time{}, credits.Invalid("ttl_seconds", "ttl_seconds must be an integer from 1 to %d", int(MaxSessionTTL.Seconds()))
	}
	exp := a.now().UTC().Add(ttl).Truncate(time.Second)
	payload, _ := json.Marshal(sessionClaims{workspaceID, memberID, exp.Unix()})
	body := prefixSession + base64.RawURLEncoding.EncodeToString(payload)
	return body + "." + a.sign(body), exp, nil
}

func (a *Authenticator) sign(body string) string {
	m := hmac.New(sha256.New, a.signingKey)
	m.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (a *Authenticator) verifySession(token string) (Principal, error) {
	body, sig, ok := strings.Cut(token, ".")
	if !ok {
		return Principal{}, unauthorized("the session token is malformed")
	}
	if !hmac.Equal([]byte(sig), []byte(a.sign(body))) {
		return Principal{}, unauthorized("the session token's signature is not valid")
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(body, prefixSession))
	if err != nil {
		return Principal{}, unauthorized("the session token is malformed")
	}
	var c sessionClaims
	if err := json.Unmarshal(raw, &c); err != nil || c.WorkspaceID == "" || c.MemberID == "" {
		return Principal{}, unauthorized("the session token is malformed")
	}
	if !a.now().Before(time.Unix(c.ExpiresAt, 0)) {
		return Principal{}, unauthorized("the session token has expired")
	}
	return Principal{Kind: KindSession, WorkspaceID: c.WorkspaceID, MemberID: c.MemberID}, nil
}

// APIKeys lists the API keys (never their secrets), revoked ones included.
func (a *Authenticator) APIKeys(ctx context.Context) ([]APIKey, error) {
	return a.store.ListAPIKeys(ctx)
}
