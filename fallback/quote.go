package fallback

// ShellQuote quotes s as one word for a POSIX shell and for the agent's
// word splitting of a non-interactive command.
func ShellQuote(s string) string { return shQuote(s) }
