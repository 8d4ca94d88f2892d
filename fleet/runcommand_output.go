package fleet

import (
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"

	"github.com/ec2ssh/ec2ssh/failure"
)

// An invocation's output as SSM keeps it, and the agent's marks in it
// (amazon-ssm-agent: iohandler.go, pluginutil.StringPrefix, runscript.go).
// These functions read text the agent wrote; none reads an error message.

const (
	// APIStdoutMax and APIStderrMax are what GetCommandInvocation keeps
	// of each stream (StandardOutputContent: "the first 24,000
	// characters"; StandardErrorContent: "the first 8,000"). The agent
	// cuts by bytes: a stream of that length or more comes back exactly
	// that long, ending in agentCutMark.
	APIStdoutMax = 24000
	APIStderrMax = 8000
	agentCutMark = "--output truncated--"

	// What ListCommandInvocations' Details carry: stdout and stderr in one
	// string of less than 2,500 bytes, or cut with marks (the agent's
	// TruncateOutput).
	detailsMax      = 2500
	detailsErrTitle = "\n----------ERROR-------\n"
	detailsOutCut   = "\n---Output truncated---"

	// s3ReadMax bounds what ec2ssh reads of one stream from S3.
	s3ReadMax = 64 << 20
)

// cut reports whether the API cut a stream, and returns it without the
// agent's mark: the agent cuts every stream of limit bytes or more, so
// what comes back is never longer than limit and exactly limit when cut.
func cut(s string, limit int) (string, bool) {
	if len(s) < limit {
		return s, false
	}
	return strings.TrimSuffix(s, agentCutMark), true
}

// stripAgentTrailer takes off the line the agent adds to stderr when a
// script exits non-zero ("failed to run commands: exit status 3", after a
// newline when stderr had something): it is the agent's, not the
// command's, and the exit status already says it.
func stripAgentTrailer(stderr string, code int) string {
	trailer := fmt.Sprintf("failed to run commands: exit status %d", code)
	s, ok := strings.CutSuffix(stderr, trailer)
	if !ok {
		return stderr
	}
	if s != "" {
		s = s[:len(s)-1] // the agent's separating newline
	}
	return s
}

// fromDetails returns stdout when ListCommandInvocations' Details output
// is exactly it: no stderr section (stderr was empty) and not cut. Then no
// GetCommandInvocation is needed. Anything else, including a stdout that
// happens to hold the agent's marks, is fetched whole.
func fromDetails(output string) (string, bool) {
	if len(output) >= detailsMax || strings.Contains(output, detailsErrTitle) || strings.HasSuffix(output, detailsOutCut) {
		return "", false
	}
	return output, true
}

// pluginDir is the agent's name for a document's plugin in S3 keys: the
// action without its colon ("aws:runShellScript" → "awsrunShellScript").
func pluginDir(doc string) string {
	if doc == DocPowerShell {
		return "awsrunPowerShellScript"
	}
	return "awsrunShellScript"
}

// s3Key is where the agent writes a stream of an invocation:
// PREFIX/COMMAND/INSTANCE/awsrunShellScript/0.awsrunShellScript/stdout.
// The agent writes a stream only when it is not empty.
func s3Key(prefix, commandID, instanceID, doc, stream string) string {
	p := pluginDir(doc)
	return path.Join(prefix, commandID, instanceID, p, "0."+p, stream)
}

// ParseOutputS3 reads --output-s3 BUCKET[/PREFIX] (an s3:// in front is
// allowed). It fails with a failure.Config.
func ParseOutputS3(s string) (bucket, prefix string, err error) {
	rest := strings.TrimPrefix(s, "s3://")
	bucket, prefix, _ = strings.Cut(rest, "/")
	prefix = strings.Trim(prefix, "/")
	bad := func(why string) error {
		return failure.Configf("write it as --output-s3 BUCKET or BUCKET/PREFIX", "bad --output-s3 value %q: %s", s, why)
	}
	if len(bucket) < 3 || len(bucket) > 63 {
		return "", "", bad("a bucket name is 3 to 63 characters")
	}
	for i, c := range bucket {
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (c != '-' && c != '.' || i == 0 || i == len(bucket)-1) {
			return "", "", bad("a bucket name has lower-case letters, digits, dots and hyphens, and starts and ends with a letter or digit")
		}
	}
	if len(prefix) > 500 {
		return "", "", bad("the prefix is longer than SendCommand's 500 characters")
	}
	return bucket, prefix, nil
}

// printer writes results as they come: each line of output after its
// instance's name (stdout to stdout, stderr to stderr), or one JSON object
// per instance; and ec2ssh's own notices, unless quiet.
type printer struct {
	mu             sync.Mutex
	stdout, stderr io.Writer
	json, quiet    bool
	width          int
}

func (p *printer) result(r *Result, notes []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		json.NewEncoder(p.stdout).Encode(r)
	} else {
		prefix := fmt.Sprintf("%-*s | ", p.width, failure.Vis(resultLabel(r)))
		writeLines(p.stdout, prefix, r.Stdout)
		writeLines(p.stderr, prefix, r.Stderr)
	}
	if !p.quiet {
		for _, n := range notes {
			fmt.Fprintf(p.stderr, "ec2ssh: %s (%s): %s\n", failure.Vis(resultLabel(r)), r.ID, n)
		}
	}
}

// note writes one of ec2ssh's own lines, unless quiet.
func (p *printer) note(format string, a ...any) {
	if p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.stderr, "ec2ssh: "+format+"\n", a...)
}

// writeLines writes each line of s after prefix; a last line without a
// newline gets one.
func writeLines(w io.Writer, prefix, s string) {
	for s != "" {
		line, rest, _ := strings.Cut(s, "\n")
		io.WriteString(w, prefix+line+"\n")
		s = rest
	}
}
