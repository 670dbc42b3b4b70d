package config

import (
	"errors"
	"fmt"
	"strings"
)

// CheckPathName returns nil when name may become a part of a metric path
// as it is: it is not empty and every byte is an ASCII letter or digit,
// '-', '_', ':' or '.', the characters HAProxy itself allows in proxy and
// server names. Otherwise the error names the first byte that is not. It
// is the rule for every configuration value that becomes a path part: the
// parts of [graphite] namespace and group-namespace, the group names and
// the host name of prefix-hostname.
func CheckPathName(name string) error {
	if name == "" {
		return errors.New("empty name")
	}
	for i := 0; i < len(name); i++ {
		if !pathNameByte(name[i]) {
			return fmt.Errorf("byte %q at offset %d is not allowed in a metric path (only letters, digits, '-', '_', ':' and '.')", name[i:i+1], i)
		}
	}
	return nil
}

func pathNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == ':' || c == '.'
}

// checkNamespace checks a value used as written at the start of metric
// paths ([graphite] namespace, group-namespace): parts that pass
// CheckPathName separated by single dots.
func checkNamespace(v string) error {
	for part := range strings.SplitSeq(v, ".") {
		if part == "" {
			return errors.New("empty part (a leading, trailing or double dot) in a metric path")
		}
		if err := CheckPathName(part); err != nil {
			return err
		}
	}
	return nil
}
