package sqlite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The journal is the store's redo log: an append-only run of files next to
// the database, one record per committed batch. A batch is acknowledged once
// its record is written and synced: one small sequential write and one
// fdatasync, however many charges the batch carries. The tables are brought
// up to date behind it (materialize.go); a file is deleted only after the
// tables hold all its records, and Open replays whatever they do not.
//
// A record on disk is [payload length uint32][CRC-32C of payload][payload].
// Only the last record can be torn (a crash mid-write): it was never
// acknowledged, so replay stops there.

// segmentBytes is the largest size of a journal file; the first after Open
// is firstSegmentBytes and each next one twice the last, so a small store
// never zeroes much. Files are written full before use: overwriting blocks
// a file already has lets fdatasync flush the data alone, with no
// file-system metadata (measured here: 112 µs and 39 µs of CPU a sync,
// against 236 µs and 66 µs appending). When one file is full the journal
// moves to the next, made ready in the background, so a file whose batches
// are all materialized can go whole.
//
// A full-size file that goes is kept to be the next file but one, instead
// of zeroing a new one: in a steady run the journal then writes its records
// and nothing else (zeroing was 4.7% of the process's CPU in credits bench
// engine/sqlite). Such a file still holds its older records past the new
// ones' end, so a file's records are the run that starts at the batch its
// name gives and goes on one batch at a time: a zero length, a record that
// does not check, or one of an older batch ends it.
const (
	segmentBytes      = 32 << 20
	firstSegmentBytes = 1 << 20
)

// maxRecordBytes bounds one record, well above the largest batch.
const maxRecordBytes = 256 << 20

var crcTable = crc32.MakeTable(crc32.Castagnoli)

type segment struct {
	path  string
	first uint64 // the first batch it holds (its name)
	last  uint64 // the last batch it holds (0 while it is the open one)
	size  int64  // its size in bytes
}

type journal struct {
	dir  string
	f    *os.File // the open segment
	cur  segment
	size int64 // the bytes of records in it
	buf  []byte
	// broken is set when a failed write could not be undone: what the file
	// holds is no longer known, so nothing more is written.
	broken error

	mu     sync.Mutex
	closed []segment // full segments, oldest first, until materialized
	// reusable is a materialized full-size segment under a temporary
	// name (path), kept to be made the next spare instead of zeroing one
	// (no path if none).
	reusable segment

	spare chan spareFile // the next file, made ready in the background
	// firstBytes and maxBytes are the sizes of the first and the largest
	// files (firstSegmentBytes and segmentBytes but in tests).
	firstBytes, maxBytes int64

	// onSync, if set, is told how long each record's write and sync took
	// (Store.OnJournalSync).
	onSync atomic.Pointer[func(time.Duration)]
}

// spareFile is a file written full (zeroed, or a reused segment) under a
// temporary name, ready to become the next segment.
type spareFile struct {
	f    *os.File
	path string
	size int64
	err  error
}

// (Not "-journal": that is SQLite's own rollback journal name.)
func journalDir(dbPath string) string { return dbPath + ".journal" }

func segmentName(first uint64) string { return fmt.Sprintf("%020d.log", first) }

// listSegments returns the journal's files in batch order.
func listSegments(dir string) ([]segment, error) {
	names, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var segs []segment
	for _, n := range names {
		first, err := strconv.ParseUint(strings.TrimSuffix(n.Name(), ".log"), 10, 64)
		if err != nil || !strings.HasSuffix(n.Name(), ".log") {
			continue
		}
		segs = append(segs, segment{path: filepath.Join(dir, n.Name()), first: first})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].first < segs[j].first })
	return segs, nil
}

// readJournal calls fn with the payload of every record after batch from,
// in order. A file's records end at the first frame that is not the next
// batch of its run (see segmentBytes): in the last file that is the end of
// the journal, or the unacknowledged tail of a crash; in any other, the
// next file must start right after it, or the batches between are lost and
// reading says so (unless none is after from: those are in the tables).
func readJournal(dir string, from uint64, fn func(payload []byte) error) error {
	segs, err := listSegments(dir)
	if err != nil {
		return err
	}
	for i, sg := range segs {
		data, err := os.ReadFile(sg.path)
		if err != nil {
			return err
		}
		next := sg.first
		for off := 0; off < len(data); {
			payload, n, ok := readFrame(data[off:])
			if !ok {
				break
			}
			batch, ok := recordBatch(payload)
			if !ok || batch < next {
				break // an older record of a reused file, or not a record at all
			}
			if batch > next {
				return fmt.Errorf("journal %s: batch %d at byte %d, where batch %d should be", sg.path, batch, off, next)
			}
			if batch > from {
				if err := fn(payload); err != nil {
					return fmt.Errorf("journal %s: record at byte %d: %w", sg.path, off, err)
				}
			}
			next++
			off += n
		}
		if i+1 < len(segs) && next != segs[i+1].first && segs[i+1].first-1 > from {
			return fmt.Errorf("journal %s: corrupt: its records end before batch %d, and the next file starts at batch %d", sg.path, next, segs[i+1].first)
		}
	}
	return nil
}

// recordBatch is the batch number a record's payload starts with (see
// appendRecord).
func recordBatch(payload []byte) (uint64, bool) {
	if len(payload) == 0 || payload[0] != recordVersion {
		return 0, false
	}
	b, n := binary.Uvarint(payload[1:])
	return b, n > 0
}

func readFrame(b []byte) (payload []byte, n int, ok bool) {
	if len(b) < 8 {
		return nil, 0, false
	}
	size := binary.LittleEndian.Uint32(b)
	sum := binary.LittleEndian.Uint32(b[4:])
	if size == 0 || size > maxRecordBytes || uint64(len(b)-8) < uint64(size) {
		return nil, 0, false
	}
	payload = b[8 : 8+size]
	if crc32.Checksum(payload, crcTable) != sum {
		return nil, 0, false
	}
	return payload, 8 + int(size), true
}

// openJournal removes the files of an already replayed journal and starts
// a new one whose first batch is next.
func openJournal(dir string, next uint64) (*journal, error) {
	return openJournalSized(dir, next, firstSegmentBytes, segmentBytes)
}

// openJournalSized is openJournal with files of firstBytes growing to
// maxBytes.
func openJournalSized(dir string, next uint64, firstBytes, maxBytes int64) (*journal, error) {
	segs, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	for _, sg := range segs {
		if err := os.Remove(sg.path); err != nil {
			return nil, err
		}
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, "next-*.tmp")); len(tmps) > 0 {
		for _, p := range tmps {
			os.Remove(p)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	j := &journal{dir: dir, firstBytes: firstBytes, maxBytes: maxBytes}
	if err := j.startSegment(next); err != nil {
		return nil, err
	}
	return j, nil
}

// startSegment makes the spare file the segment whose first batch is first
// and starts making the next spare. On an error the journal is as it was,
// and the next try zeroes a spare of its own.
func (j *journal) startSegment(first uint64) error {
	var sp spareFile
	if j.spare != nil {
		sp = <-j.spare
		j.spare = nil
	} else {
		sp = makeSpare(j.dir, j.firstBytes)
	}
	if sp.err != nil {
		return sp.err
	}
	path := filepath.Join(j.dir, segmentName(first))
	if err := os.Rename(sp.path, path); err != nil {
		sp.f.Close()
		os.Remove(sp.path)
		return err
	}
	// The new name must survive a crash too.
	if err := syncDir(j.dir); err != nil {
		sp.f.Close()
		os.Remove(path)
		return err
	}
	j.f, j.cur, j.size = sp.f, segment{path: path, first: first, size: sp.size}, 0
	j.spare = make(chan spareFile, 1)
	go func(ch chan<- spareFile, size int64) { ch <- j.nextSpare(size) }(j.spare, min(2*sp.size, j.maxBytes))
	return nil
}

// nextSpare is the reusable segment if there is one of the size wanted, or
// else a newly zeroed file.
func (j *journal) nextSpare(size int64) spareFile {
	j.mu.Lock()
	r := j.reusable
	j.reusable = segment{}
	j.mu.Unlock()
	if r.path != "" {
		if r.size == size {
			f, err := os.OpenFile(r.path, os.O_RDWR, 0)
			if err == nil {
				return spareFile{f: f, path: r.path, size: size}
			}
		}
		os.Remove(r.path)
	}
	return makeSpare(j.dir, size)
}

// makeSpare writes a zeroed file of size bytes and syncs it.
func makeSpare(dir string, size int64) spareFile {
	f, err := os.CreateTemp(dir, "next-*.tmp")
	if err != nil {
		return spareFile{err: err}
	}
	zeros := make([]byte, min(size, 1<<20))
	for off := int64(0); off < size && err == nil; off += int64(len(zeros)) {
		_, err = f.Write(zeros[:min(int64(len(zeros)), size-off)])
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return spareFile{err: err}
	}
	return spareFile{f: f, path: f.Name(), size: size}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// append writes one batch's record and syncs it. When it returns nil the
// record is on disk; when it returns an error the file is as it was before
// (or the journal is broken and refuses every later write).
func (j *journal) append(batch uint64, payload []byte) error {
	if j.broken != nil {
		return j.broken
	}
	if len(payload) > maxRecordBytes {
		return fmt.Errorf("journal: a record of %d bytes is over the limit", len(payload))
	}
	j.buf = binary.LittleEndian.AppendUint32(j.buf[:0], uint32(len(payload)))
	j.buf = binary.LittleEndian.AppendUint32(j.buf, crc32.Checksum(payload, crcTable))
	j.buf = append(j.buf, payload...)
	if j.size+int64(len(j.buf)) > j.cur.size && j.size > 0 {
		if err := j.rotate(batch); err != nil {
			return err
		}
	}
	start := time.Now()
	_, err := j.f.WriteAt(j.buf, j.size)
	if err == nil {
		err = datasync(j.f)
	}
	if err != nil {
		j.undo(err)
		return err
	}
	if fn := j.onSync.Load(); fn != nil {
		(*fn)(time.Since(start))
	}
	j.size += int64(len(j.buf))
	j.cur.last = batch
	return nil
}

// undo zeroes what a failed write may have left after the last
// acknowledged record, so a later replay does not apply a batch whose callers were told
// it failed.
func (j *journal) undo(cause error) {
	if _, err := j.f.WriteAt(make([]byte, len(j.buf)), j.size); err != nil {
		j.broken = fmt.Errorf("journal: a write failed (%v) and could not be undone: %w", cause, err)
		return
	}
	if err := datasync(j.f); err != nil {
		j.broken = fmt.Errorf("journal: a write failed (%v) and could not be undone: %w", cause, err)
	}
}

// rotate moves on to a new file. The full one stays the open one until the
// new one is ready, so a failure leaves the journal able to try again.
func (j *journal) rotate(next uint64) error {
	full, seg := j.f, j.cur
	if err := j.startSegment(next); err != nil {
		return err
	}
	full.Close() // its records are synced; a close error changes nothing
	j.mu.Lock()
	j.closed = append(j.closed, seg)
	j.mu.Unlock()
	return nil
}

// release lets go of the full files whose batches are all materialized:
// one of full size is kept to be reused (see segmentBytes), the others are
// deleted. Neither needs the folder synced: after a crash, a file still
// under its old name holds only materialized batches, which replay skips,
// and a temporary name is removed at Open.
func (j *journal) release(materialized uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for len(j.closed) > 0 && j.closed[0].last <= materialized {
		sg := j.closed[0]
		if sg.size == j.maxBytes && j.reusable.path == "" {
			tmp := filepath.Join(j.dir, fmt.Sprintf("next-reused-%d.tmp", sg.first))
			if err := os.Rename(sg.path, tmp); err == nil {
				j.reusable = segment{path: tmp, size: sg.size}
				j.closed = j.closed[1:]
				continue
			}
		}
		if err := os.Remove(sg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		j.closed = j.closed[1:]
	}
	return nil
}

// close closes the open file. When everything is materialized the journal
// is empty and its files and folder are removed.
func (j *journal) close(allMaterialized bool) error {
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	if j.spare != nil {
		if sp := <-j.spare; sp.err == nil {
			sp.f.Close()
			os.Remove(sp.path)
		}
	}
	j.mu.Lock()
	if j.reusable.path != "" {
		os.Remove(j.reusable.path)
		j.reusable = segment{}
	}
	j.mu.Unlock()
	if err != nil || !allMaterialized || j.broken != nil {
		return err
	}
	j.mu.Lock()
	segs := append(j.closed, j.cur)
	j.closed = nil
	j.mu.Unlock()
	for _, sg := range segs {
		if err := os.Remove(sg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return os.Remove(j.dir)
}

// CopyJournal copies the journal of the database at src, which another
// process may have open, to be the journal of the database at dst. A backup
// copies the journal first and the tables second: a journal file is removed
// only once the tables hold all its batches, so the two copies together hold
// every batch acknowledged before the backup began, and opening dst replays
// what its tables lack.
func CopyJournal(src, dst string) error {
	segs, err := listSegments(journalDir(src))
	if err != nil {
		return err
	}
	to := journalDir(dst)
	if err := os.MkdirAll(to, 0o700); err != nil {
		return err
	}
	for _, sg := range segs {
		data, err := readSegment(sg.path)
		if errors.Is(err, os.ErrNotExist) {
			continue // materialized meanwhile: the tables copied later hold it
		}
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(to, filepath.Base(sg.path)), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// readSegment reads a journal file that the journal may let go of meanwhile.
// A file it lets go of may be reused and written again under another name
// (release), so what was read counts only if the name still holds the same
// file once read; if not, it reports os.ErrNotExist.
func readSegment(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	opened, err := f.Stat()
	if err != nil {
		return nil, err
	}
	now, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !os.SameFile(opened, now) {
		return nil, fmt.Errorf("journal %s: %w (let go of while read)", path, os.ErrNotExist)
	}
	return data, nil
}
