package lab

import "errors"

// splitWords splits s into words the way the SSM agent splits a
// NonInteractiveCommands command line before executing it without a shell
// (google/shlex: POSIX quoting, with backslash escapes outside single
// quotes).
func splitWords(s string) ([]string, error) {
	var words []string
	var cur []byte
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				words = append(words, string(cur))
				cur, inWord = nil, false
			}
		case c == '\\':
			if i+1 >= len(s) {
				return nil, errors.New("EOF found after escape character")
			}
			i++
			cur, inWord = append(cur, s[i]), true
		case c == '\'':
			j := i + 1
			for j < len(s) && s[j] != '\'' {
				j++
			}
			if j >= len(s) {
				return nil, errors.New("EOF found when expecting closing quote")
			}
			cur, inWord = append(cur, s[i+1:j]...), true
			i = j
		case c == '"':
			inWord = true
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) && (s[j+1] == '"' || s[j+1] == '\\' || s[j+1] == '$' || s[j+1] == '`') {
					j++
				}
				cur = append(cur, s[j])
			}
			if j >= len(s) {
				return nil, errors.New("EOF found when expecting closing quote")
			}
			i = j
		case c == '#' && !inWord:
			for i < len(s) && s[i] != '\n' {
				i++
			}
		default:
			cur, inWord = append(cur, c), true
		}
	}
	if inWord {
		words = append(words, string(cur))
	}
	return words, nil
}
