package store

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ReleaseMapped drops from this process's page tables the pages of the
// store's tables, value log and memtable logs that Badger has
// memory-mapped and a scan or a commit has touched (MADV_DONTNEED on its
// shared, file-backed mappings of *.sst, *.vlog and *.mem). The pages stay in the kernel's page cache and are mapped
// again, without reading the disk, on the next access; nothing is lost,
// dirty pages of a shared mapping remain dirty in the page cache. Without
// it a scan of the whole store keeps every page it touched in the
// process's resident set (the history alone is some 65 MB for Italy), which
// is cache, not memory the process needs. Best effort: errors are ignored.
func (s *Store) ReleaseMapped() {
	dir := s.db.Opts().Dir
	if dir == "" {
		return
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 7f3c2a000000-7f3c2e000000 rw-s 00000000 08:01 1234   /path/000001.vlog
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || len(fields[1]) != 4 || fields[1][3] != 's' {
			continue
		}
		path := strings.Join(fields[5:], " ")
		if filepath.Dir(path) != dir || (!strings.HasSuffix(path, ".sst") && !strings.HasSuffix(path, ".vlog") && !strings.HasSuffix(path, ".mem")) {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		syscall.Syscall(syscall.SYS_MADVISE, uintptr(start), uintptr(end-start), syscall.MADV_DONTNEED)
	}
}
