package main

import (
	"fmt"
	"strings"

	"anprsec/istat"
)

// istatFlag reads a --comune value as the census reads an ISTAT code:
// 58091 is 058091. A value that is not a code is an error naming it.
func istatFlag(v string) (string, error) {
	code, err := istat.NormalizeISTAT(strings.TrimSpace(v))
	if err != nil {
		return "", fmt.Errorf("--comune %q: %v", v, err)
	}
	return code, nil
}
