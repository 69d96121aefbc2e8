package bench

import (
	"os"
	"syscall"
)

// datasync is the journal's sync (sqlite/datasync_linux.go): the data, and
// only the metadata needed to read it.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
