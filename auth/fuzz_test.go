package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/credits-dev/credits"
)

// FuzzAuthenticate feeds any secret to Authenticate: it never panics, it
// refuses with unauthorized, and it accepts only the admin key, a made API
// key's secret, or a session token whose signature is the HMAC of its body
// under the signing key (recomputed here, apart from the code under test).
// A session token issued for the fuzzed workspace and member comes back with
// them, and the same token with any one byte changed is refused.
func FuzzAuthenticate(f *testing.F) {
	ctx := context.Background()
	const adminKey = "cra_fuzz-admin-key"
	const signingKey = "fuzz-signing-key-0123456789"
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	st := newMemStore()
	st.settings[settingSigningKey] = signingKey
	a, _, err := New(ctx, st, Options{AdminKey: adminKey, NowFunc: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	_, apiSecret, err := a.CreateAPIKey(ctx, "fuzz", ScopeService)
	if err != nil {
		f.Fatal(err)
	}
	valid, _, _ := a.IssueSession("w", "m", time.Hour)
	past := &Authenticator{store: st, signingKey: []byte(signingKey), now: func() time.Time { return now.Add(-2 * time.Hour) }}
	expired, _, _ := past.IssueSession("w", "m", time.Hour)
	for _, s := range []string{
		"", adminKey, apiSecret, valid, expired, valid + "x", "x" + valid, strings.Replace(valid, ".", "", 1),
		"crs_", "crs_.", "crs_e30." + sign(signingKey, "crs_e30"), // {} signed: no workspace
		"crs_bnVsbA." + sign(signingKey, "crs_bnVsbA"), // null signed
		"crk_nope", "cra_nope", strings.Repeat("a", maxSecretLen+1), "crs_\xff.\xff",
	} {
		f.Add(s, "w", "m", uint16(0))
	}
	f.Add("", "acme", "alice", uint16(17))
	f.Add("", "ws with spaces\x00", "membre-é", uint16(999))

	f.Fuzz(func(t *testing.T, secret, ws, member string, flip uint16) {
		p, err := a.Authenticate(ctx, secret)
		if err != nil {
			if credits.ErrorCode(err) != credits.CodeUnauthorized {
				t.Fatalf("error %v, want unauthorized", err)
			}
		} else {
			switch p.Kind {
			case KindAdminKey:
				if secret != adminKey {
					t.Fatalf("%q accepted as the admin key", secret)
				}
			case KindAPIKey:
				if secret != apiSecret {
					t.Fatalf("%q accepted as an API key", secret)
				}
			case KindSession:
				body, sig, _ := strings.Cut(secret, ".")
				if !strings.HasPrefix(body, prefixSession) || sig != sign(signingKey, body) {
					t.Fatalf("%q accepted as a session token without the signature", secret)
				}
				if p.WorkspaceID == "" || p.MemberID == "" {
					t.Fatalf("%q accepted naming no workspace or member: %+v", secret, p)
				}
			default:
				t.Fatalf("%q accepted as %+v", secret, p)
			}
		}

		if ws == "" {
			return
		}
		tok, _, err := a.IssueSession(ws, member, time.Hour)
		if err != nil {
			if credits.ErrorCode(err) != credits.CodeInvalidRequest {
				t.Fatalf("IssueSession(%q, %q): %v", ws, member, err)
			}
			return
		}
		p, err = a.Authenticate(ctx, tok)
		if len(tok) <= maxSecretLen {
			if err != nil || p.Kind != KindSession || p.WorkspaceID != ws || p.MemberID != member {
				t.Fatalf("token for %q/%q: %+v, %v", ws, member, p, err)
			}
		}
		b := []byte(tok)
		i := int(flip) % len(b)
		b[i] ^= byte(flip>>8) | 1
		if _, err := a.Authenticate(ctx, string(b)); err == nil {
			t.Fatalf("token %q with byte %d changed (%q) accepted", tok, i, b)
		}
	})
}

// sign is the session signature, computed apart from Authenticator.sign.
func sign(key, body string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
