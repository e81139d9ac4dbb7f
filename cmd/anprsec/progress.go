package main

import (
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

// isTerminal says whether w is a terminal; a variable for the tests.
var isTerminal = func(w io.Writer) bool {
	if t, ok := w.(interface{ IsTerminal() bool }); ok {
		return t.IsTerminal() // the caller's stderr, through the control socket
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// newProgress returns a progress bar on the command's stderr when it is a
// terminal, and a bar that draws nothing otherwise (scripts, cron, logs).
// max -1 is a spinner with the elapsed time, for work of unknown length;
// bytes shows sizes (KiB, MiB) instead of counts. The bar is cleared when
// Finish is called; always call it (a spinner redraws until then).
func newProgress(cmd *cobra.Command, max int64, desc string, bytes bool) *progressbar.ProgressBar {
	w := cmd.ErrOrStderr()
	if !isTerminal(w) {
		return progressbar.NewOptions64(max, progressbar.OptionSetWriter(io.Discard), progressbar.OptionSetVisibility(false))
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionFullWidth(),
	}
	if bytes {
		opts = append(opts, progressbar.OptionShowBytes(true), progressbar.OptionShowTotalBytes(true), progressbar.OptionUseIECUnits(true))
	}
	if max >= 0 || bytes {
		opts = append(opts, progressbar.OptionShowCount())
	}
	return progressbar.NewOptions64(max, opts...)
}
