package store

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// ReleaseMapped drops from this process's page tables the pages of the
// store's tables, value log and memtable logs that Badger has
// memory-mapped and a scan or a commit has touched (MADV_DONTNEED on its
// shared, file-backed mappings, each held mapped meanwhile: see
// badgerMaps). The pages stay in the kernel's page cache and are mapped
// again, without reading the disk, on the next access; nothing is lost,
// dirty pages of a shared mapping remain dirty in the page cache. Without
// it a scan of the whole store keeps every page it touched in the
// process's resident set (the history alone is some 65 MB for Italy), which
// is cache, not memory the process needs. Best effort: errors are ignored.
func (s *Store) ReleaseMapped() {
	if s.maps == nil {
		return
	}
	s.maps.each(func(data []byte) {
		if len(data) == 0 {
			return
		}
		syscall.Syscall(syscall.SYS_MADVISE, uintptr(unsafe.Pointer(unsafe.SliceData(data))), uintptr(len(data)), syscall.MADV_DONTNEED)
	})
}

// residentFileBytes is the process's resident memory backed by files
// (/proc/self/statm's shared pages: the executable, the libraries and the
// store's mappings); 0 when unknown.
func residentFileBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 3 {
		return 0
	}
	n, err := strconv.ParseInt(string(f[2]), 10, 64)
	if err != nil {
		return 0
	}
	return n * int64(os.Getpagesize())
}
