package auth

import "crypto/subtle"

// isAdmin reports whether h is the hash of an admin key that is valid now.
// Every hash is compared, in constant time, whichever matches: the time an
// answer takes says nothing about which key, or how much of one, matched.
// An expired key (a previous key after its grace period) matches nothing.
func (a *Authenticator) isAdmin(h []byte) bool {
	now := a.now()
	match := 0
	for _, ah := range a.adminHashes {
		eq := subtle.ConstantTimeCompare(h, ah.sum)
		live := 1
		if !ah.until.IsZero() && !now.Before(ah.until) {
			live = 0
		}
		match |= eq & live
	}
	return match == 1
}
