package sqlite

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ledger"
)

func sampleRecord(batch uint64) *record {
	now := time.Date(2026, 11, 25, 12, 0, 0, 123000, time.UTC)
	member, pending := "m1", "pro"
	c := &ledger.Changes{
		NewWorkspaces: []ledger.Account{{Workspace: credits.Workspace{ID: "w1", Name: "One", Plan: "free", PendingPlan: &pending, CycleAnchor: now, CreatedAt: now},
			Cycle: credits.Cycle{N: 2, Start: now, End: now.AddDate(0, 1, 0), Granted: 250, Available: 220, Held: 30}, NextExpiry: now.Add(time.Hour)}},
		Accounts: []ledger.Account{{Workspace: credits.Workspace{ID: "w2", Name: "Two", Plan: "pro", CycleAnchor: now, CreatedAt: now}}},
		Cycles:   []ledger.CycleRow{{WorkspaceID: "w1", Cycle: credits.Cycle{N: 1, Start: now, End: now, Granted: 5, Used: 3, Expired: 2}}},
		NewCharges: []credits.Charge{{ID: "ch_1", WorkspaceID: "w1", Cycle: 2, Operation: "image_1k", Quantity: 1, Cost: 30, Status: "held",
			MemberID: &member, Metadata: map[string]string{"b": "2", "a": "ü"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}},
		Charges: []credits.Charge{{ID: "ch_0", WorkspaceID: "w2", Operation: "content_rewrite", Quantity: 3, Cost: 3, Status: "captured", CreatedAt: now, ExpiresAt: now, FinalizedAt: now}},
		Entries: []credits.Entry{{Seq: 7, ID: "le_7", WorkspaceID: "w1", Cycle: 2, At: now, Type: "hold", Amount: -30, AvailableAfter: 220, ChargeID: "ch_1", Operation: "image_1k", MemberID: "m1"},
			{Seq: 8, ID: "le_8", WorkspaceID: "w2", At: now, Type: "adjust", Amount: 5, AvailableAfter: 9, Reason: "sorry"}},
		Idempotency: []ledger.IdemRecord{{WorkspaceID: "w1", Key: "k", Fingerprint: "fp", CreatedAt: now}},
	}
	return &record{Batch: batch, Changes: c, Results: [][]byte{[]byte(`{"charge":{"id":"ch_1"}}`)}}
}

// A record decodes to what was encoded.
func TestRecordRoundTrip(t *testing.T) {
	r := sampleRecord(42)
	got, err := decodeRecord(appendRecord(nil, r))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got.Changes, r.Changes)
	}
	empty := &record{Batch: 1, Changes: &ledger.Changes{}}
	if got, err := decodeRecord(appendRecord(nil, empty)); err != nil || got.Batch != 1 {
		t.Fatalf("empty record: %+v %v", got, err)
	}
}

// Every cut of a record is refused, never misread or a panic.
func TestRecordCutShort(t *testing.T) {
	b := appendRecord(nil, sampleRecord(1))
	for n := range len(b) {
		if _, err := decodeRecord(b[:n]); err == nil {
			t.Fatalf("a record cut to %d of %d bytes decoded", n, len(b))
		}
	}
	if _, err := decodeRecord(append(b, 0)); err == nil {
		t.Fatal("a record with a byte too many decoded")
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendRecord(nil, sampleRecord(3)))
	f.Add([]byte{recordVersion, 1, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		// What decodes encodes to the same bytes... unless maps reordered
		// or varints were not minimal; it must at least decode again.
		if _, err := decodeRecord(appendRecord(nil, r)); err != nil {
			t.Fatalf("re-encoding a decoded record: %v", err)
		}
	})
}

// The journal moves to new, larger files as it fills, reads back every
// record in order, and deletes a file once its batches are materialized.
func TestJournalSegments(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "j")
	j, err := openJournal(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	const n = 4000 // about 4 MB: files of 1, 2 and then 4 MiB
	for b := uint64(1); b <= n; b++ {
		if err := j.append(b, numbered(b, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	segs, _ := listSegments(dir)
	if len(segs) != 3 || segs[0].first != 1 {
		t.Fatalf("segments %+v, want 3 starting at batch 1", segs)
	}
	if seen := readNumbered(t, dir); seen != n {
		t.Fatalf("read %d records, want %d", seen, n)
	}
	// A file goes once all of it is materialized, and not before.
	if err := j.release(segs[1].first); err != nil {
		t.Fatal(err)
	}
	if left, _ := listSegments(dir); len(left) != 2 || left[0].first != segs[1].first {
		t.Fatalf("after release: %+v", left)
	}
	if err := j.close(false); err != nil {
		t.Fatal(err)
	}
	if left, _ := listSegments(dir); len(left) != 2 {
		t.Fatalf("close kept %d files, want 2 (not all materialized)", len(left))
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(tmps) != 0 {
		t.Fatalf("close left spare files %v", tmps)
	}
}

// A crash mid-write leaves a torn record at the end of the last file: it was
// never acknowledged, and reading stops there. Torn anywhere else, the
// journal is corrupt and reading says so.
func TestJournalTornTail(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "j")
	j, err := openJournal(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	for b := uint64(1); b <= 3; b++ {
		if err := j.append(b, numbered(b, 20)); err != nil {
			t.Fatal(err)
		}
	}
	end, path := j.size, j.cur.path
	j.close(false)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A header that promises 50 bytes, and 10 of them.
	torn := binary.LittleEndian.AppendUint32(nil, 50)
	torn = binary.LittleEndian.AppendUint32(torn, 12345)
	torn = append(torn, "0123456789"...)
	if _, err := f.WriteAt(torn, end); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var got [][]byte
	read := func(p []byte) error { got = append(got, p); return nil }
	if err := readJournal(dir, 0, read); err != nil || len(got) != 3 || !bytes.Equal(got[2], numbered(3, 20)) {
		t.Fatalf("read %q, %v", got, err)
	}
	// The same tear in a file that is not the last is corruption: the
	// next file starts at a later batch than the torn one.
	if err := os.WriteFile(filepath.Join(dir, segmentName(4)), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	got = nil
	if err := readJournal(dir, 0, read); err != nil || len(got) != 3 {
		t.Fatalf("a next file starting where the records end: read %d, %v", len(got), err)
	}
	os.Remove(filepath.Join(dir, segmentName(4)))
	if err := os.WriteFile(filepath.Join(dir, segmentName(5)), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	got = nil
	if err := readJournal(dir, 0, read); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("a torn record before the last file was read as the end: %v", err)
	}
	// ...unless every batch lost is already in the tables.
	got = nil
	if err := readJournal(dir, 4, read); err != nil || len(got) != 0 {
		t.Fatalf("reading after batch 4: read %d, %v", len(got), err)
	}
}

// A move to a new file that fails (here: its spare could not be made)
// fails that one write and leaves the journal as it was: the next write
// moves on, and reading gives every record written but the failed one.
func TestJournalRotationFailure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "j")
	j, err := openJournal(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	const size = 100_000
	b := uint64(1)
	for ; j.size+8+size <= j.cur.size; b++ { // fill the first file
		if err := j.append(b, numbered(b, size)); err != nil {
			t.Fatal(err)
		}
	}
	<-j.spare // the zeroed spare, replaced by one that failed
	failed := make(chan spareFile, 1)
	failed <- spareFile{err: errors.New("disk full")}
	j.spare = failed
	if err := j.append(b, numbered(b, size)); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("write needing a new file without one: %v", err)
	}
	if segs, _ := listSegments(dir); len(segs) != 1 || j.broken != nil {
		t.Fatalf("after the failure: %d files, broken %v", len(segs), j.broken)
	}
	if err := j.append(b, numbered(b, size)); err != nil { // the batch number again: it was never written
		t.Fatalf("the next write: %v", err)
	}
	if segs, _ := listSegments(dir); len(segs) != 2 {
		t.Fatalf("after the retry: %d files, want 2", len(segs))
	}
	if seen := readNumbered(t, dir); seen != b {
		t.Fatalf("read %d records, want %d", seen, b)
	}
	j.close(false)
}

// numbered is a payload of size bytes that starts as a record of batch b
// does (recordBatch), the rest filler.
func numbered(b uint64, size int) []byte {
	p := binary.AppendUvarint([]byte{recordVersion}, b)
	return append(p, bytes.Repeat([]byte("x"), size-len(p))...)
}

// readNumbered reads a journal of numbered records, checks they run 1, 2,
// 3, … and returns how many there are.
func readNumbered(t *testing.T, dir string) uint64 {
	t.Helper()
	return readNumberedFrom(t, dir, 0)
}

// readNumberedFrom is readNumbered of the records after batch from.
func readNumberedFrom(t *testing.T, dir string, from uint64) uint64 {
	t.Helper()
	seen := from
	err := readJournal(dir, from, func(p []byte) error {
		seen++
		if got, _ := recordBatch(p); got != seen {
			return fmt.Errorf("record %d holds batch %d", seen, got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return seen - from
}

// Once at full size, a file whose batches are all materialized becomes a
// later file instead of a new one being zeroed, and reading never takes
// the older records it still holds for new ones: here records of one size,
// so the older ones line up with the new ones' frames.
func TestJournalReusesItsFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "j")
	const fileBytes = 64 << 10
	j, err := openJournalSized(dir, 1, fileBytes, fileBytes)
	if err != nil {
		t.Fatal(err)
	}
	const n, lag = 700, 100 // records (about 11 files) and how far the tables are behind
	seen := map[string]os.FileInfo{}
	var files []os.FileInfo
	reused := 0
	for b := uint64(1); b <= n; b++ {
		if err := j.append(b, numbered(b, 1000)); err != nil {
			t.Fatal(err)
		}
		if _, ok := seen[j.cur.path]; !ok {
			fi, err := os.Stat(j.cur.path)
			if err != nil {
				t.Fatal(err)
			}
			for _, old := range files {
				if os.SameFile(old, fi) {
					reused++
				}
			}
			seen[j.cur.path] = fi
			files = append(files, fi)
		}
		materialized := uint64(0)
		if b > lag {
			materialized = b - lag
		}
		if err := j.release(materialized); err != nil {
			t.Fatal(err)
		}
		// A crash now: replay reads every batch the tables lack, in order.
		if got := readNumberedFrom(t, dir, materialized); got != b-materialized {
			t.Fatalf("after batch %d, materialized %d: read %d records", b, materialized, got)
		}
		// And all of them, from the oldest file kept, without an older one.
		var all []uint64
		if err := readJournal(dir, 0, func(p []byte) error {
			batch, _ := recordBatch(p)
			all = append(all, batch)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for i, batch := range all {
			if batch != b-uint64(len(all)-1-i) {
				t.Fatalf("after batch %d: read batches %v", b, all)
			}
		}
	}
	if reused < 5 {
		t.Fatalf("%d of %d files were reused ones, want most", reused, len(files))
	}
	// The open file, past its records, holds an older file's: a frame that
	// checks, of a batch before the file's first.
	data, err := os.ReadFile(j.cur.path)
	if err != nil {
		t.Fatal(err)
	}
	p, _, ok := readFrame(data[j.size:])
	if batch, isRecord := recordBatch(p); !ok || !isRecord || batch >= j.cur.first {
		t.Fatalf("after the open file's records: a frame (%v) of batch %d, want an older record", ok, batch)
	}
	// At most the files the tables lack, the reusable one and the spare.
	if names, _ := os.ReadDir(dir); len(names) > 6 {
		t.Fatalf("%d files in the journal's folder", len(names))
	}
	if j.reusable.path == "" {
		t.Fatal("no file kept for reuse at the end")
	}
	if err := j.close(false); err != nil {
		t.Fatal(err)
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(tmps) != 0 {
		t.Fatalf("close left %v", tmps)
	}
}

// A record of a later batch than its file's run has next is a gap, not an
// end: reading says so.
func TestJournalGapInAFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "j")
	j, err := openJournal(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []uint64{1, 2, 4} {
		if err := j.append(b, numbered(b, 20)); err != nil {
			t.Fatal(err)
		}
	}
	j.close(false)
	err = readJournal(dir, 0, func([]byte) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "batch 4 at byte 56, where batch 3 should be") {
		t.Fatalf("a file with batch 3 missing: %v", err)
	}
}

// A backup that reads a file the journal lets go of (and may reuse) while
// reading it counts it as gone: the tables, copied after, hold its batches.
func TestReadSegmentLetGo(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, segmentName(1))
	if err := os.WriteFile(path, []byte("records"), 0o600); err != nil {
		t.Fatal(err)
	}
	if data, err := readSegment(path); err != nil || string(data) != "records" {
		t.Fatalf("readSegment: %q, %v", data, err)
	}
	if err := os.Rename(path, filepath.Join(dir, "next-reused-1.tmp")); err != nil {
		t.Fatal(err)
	}
	if _, err := readSegment(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a file let go of: %v", err)
	}
}

// nextSpare reuses the kept file only when it is of the size wanted and
// opens; otherwise it lets it go and zeroes a new one.
func TestNextSpareFallsBack(t *testing.T) {
	const size = 64 << 10
	for _, tc := range []struct {
		name   string
		kept   func(t *testing.T, dir string) segment // the file kept for reuse
		reused bool
	}{
		{"none", func(*testing.T, string) segment { return segment{} }, false},
		{"of the size wanted", func(t *testing.T, dir string) segment { return keptFile(t, dir, size) }, true},
		{"of another size", func(t *testing.T, dir string) segment { return keptFile(t, dir, size/2) }, false},
		{"gone from the disk", func(t *testing.T, dir string) segment {
			s := keptFile(t, dir, size)
			if err := os.Remove(s.path); err != nil {
				t.Fatal(err)
			}
			return s
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			j := &journal{dir: dir}
			kept := tc.kept(t, dir)
			j.reusable = kept
			sp := j.nextSpare(size)
			if sp.err != nil {
				t.Fatal(sp.err)
			}
			defer sp.f.Close()
			if got := sp.path == kept.path; got != tc.reused {
				t.Fatalf("spare %s, kept %s: reused %v, want %v", sp.path, kept.path, got, tc.reused)
			}
			if fi, err := sp.f.Stat(); err != nil || fi.Size() != size || sp.size != size {
				t.Fatalf("spare of %d bytes (noted %d, %v), want %d", fi.Size(), sp.size, err, size)
			}
			if off, _ := sp.f.Seek(0, io.SeekCurrent); off != 0 {
				t.Fatalf("spare opened at offset %d", off)
			}
			if kept.path != "" && !tc.reused {
				if _, err := os.Stat(kept.path); !os.IsNotExist(err) {
					t.Fatalf("the kept file not let go: %v", err)
				}
			}
			if j.reusable.path != "" {
				t.Fatal("the kept file is still kept after being taken")
			}
		})
	}
}

func keptFile(t *testing.T, dir string, size int64) segment {
	t.Helper()
	path := filepath.Join(dir, "old.log")
	if err := os.WriteFile(path, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	return segment{path: path, first: 1, last: 2, size: size}
}
