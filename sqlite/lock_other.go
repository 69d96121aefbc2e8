//go:build !unix

package sqlite

import "os"

// lockFile opens path; without flock another process is not kept out.
func lockFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
}
