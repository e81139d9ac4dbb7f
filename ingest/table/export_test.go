package table

// SetUnzipLimit lowers the zip-bomb limit for a test; the returned func
// restores it.
func SetUnzipLimit(n int64) (restore func()) {
	old := unzipSizeLimit
	unzipSizeLimit = n
	return func() { unzipSizeLimit = old }
}
