package httpapi

import "net/http"

// revokeAPIKey answers DELETE /v1/api-keys/{id}: the key with its
// revoked_at. From then on its secret gets 401. Revoking it again answers the
// same; an unknown id is 404.
func (s *Server) revokeAPIKey(w http.ResponseWriter, r *http.Request) error {
	k, err := s.auth.RevokeAPIKey(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, k)
	return nil
}
