package httpapi

import (
	"net/http"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ai"
)

// AIRequest is the body of POST /v1/workspaces/{id}/ai/{operation}.
type AIRequest struct {
	Prompt   *string `json:"prompt"`
	Text     *string `json:"text"`
	MemberID *string `json:"member_id"`
}

// runAI holds the operation's cost, runs it on the provider and answers the
// captured charge with the whole result; a failure releases the hold and
// answers 502 operation_failed with no result.
func (s *Server) runAI(w http.ResponseWriter, r *http.Request) error {
	if s.ai == nil {
		return credits.Errorf(credits.CodeUnavailable, "AI operations are not configured on this server")
	}
	var req AIRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if err := s.sessionMember(r, &req.MemberID); err != nil {
		return err
	}
	resp, err := s.ai.Run(r.Context(), ai.RunParams{
		WorkspaceID:    r.PathValue("id"),
		IdempotencyKey: r.Header.Get("Idempotency-Key"),
		Operation:      r.PathValue("operation"),
		Prompt:         req.Prompt,
		Text:           req.Text,
		MemberID:       req.MemberID,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}
