package postgres

import (
	"sync"

	"github.com/credits-dev/credits/ledger"
)

// maxHomes bounds the charges whose workspace a Store remembers (about 100
// bytes each): holds are captured within minutes, so the newest are the
// ones that matter.
const maxHomes = 1 << 16

// homes remembers which workspace each charge belongs to. A charge never
// changes workspace, so what is remembered never goes stale, even when
// another instance finishes the charge. A batch that finishes a charge whose
// home is known names that workspace to lock and read; the others are found
// by looking the charges up, which LoadBatch's lock and account statements
// each do (two index lookups a charge more; see batchWorkspaces).
//
// Only committed charges are remembered. A home learnt from a batch that
// then failed would be harmless (it names a workspace for an id that does
// not exist: the batch locks that workspace and finds no charge), but it
// would be a guess.
type homes struct {
	mu sync.Mutex
	m  map[string]string // charge id -> workspace id
}

// put remembers the homes of pairs (charge id, workspace id, ...). Past
// maxHomes an arbitrary eighth is forgotten, as in the engine's cache.
func (h *homes) put(pairs []string) {
	if len(pairs) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = make(map[string]string)
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		if _, ok := h.m[pairs[i]]; !ok && len(h.m) >= maxHomes {
			ledger.Evict(h.m, maxHomes/8+1)
		}
		h.m[pairs[i]] = pairs[i+1]
	}
}

// place splits charges into the workspaces of those whose home is known
// and the charges still to look up.
func (h *homes) place(charges []string) (known, unknown []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range charges {
		if ws, ok := h.m[id]; ok {
			known = append(known, ws)
		} else {
			unknown = append(unknown, id)
		}
	}
	return known, unknown
}
