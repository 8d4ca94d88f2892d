package reach

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ec2ssh/ec2ssh/preflight"
)

// TestTerminateIsSentNotAwaited: TerminateSession returns once it is on
// the wire, however AWS answers it (the exit waits for no answer), and the
// call still reaches AWS; a call that cannot be sent fails as before.
func TestTerminateIsSentNotAwaited(t *testing.T) {
	for _, tt := range []struct {
		name    string
		status  int
		delay   time.Duration
		wantErr bool
	}{
		{"slow answer: returned when sent", 200, 1500 * time.Millisecond, false},
		{"a denial: not waited for either", 400, 500 * time.Millisecond, false},
		{"AWS out of reach: the error", 0, 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got.Add(1)
				select {
				case <-time.After(tt.delay):
				case <-r.Context().Done():
					return
				}
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				w.WriteHeader(tt.status)
				if tt.status != 200 {
					w.Write([]byte(`{"__type":"AccessDeniedException","message":"no"}`))
					return
				}
				w.Write([]byte(`{"SessionId":"s-1"}`))
			}))
			defer srv.Close()
			url := srv.URL
			if tt.status == 0 {
				srv.Close() // nothing listens there now
			}
			t.Setenv("AWS_ENDPOINT_URL", url)
			t.Setenv("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKEFAKE")
			t.Setenv("AWS_SECRET_ACCESS_KEY", "fake")
			t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
			t.Setenv("AWS_CONFIG_FILE", "/dev/null")
			t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
			a, err := preflight.Load(context.Background(), preflight.Options{Region: "us-east-1"})
			if err != nil {
				t.Fatal(err)
			}
			c := terminateSent{ssm.NewFromConfig(a.Config)}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			start := time.Now()
			_, err = c.TerminateSession(ctx, &ssm.TerminateSessionInput{SessionId: aws.String("s-1")})
			took := time.Since(start)
			cancel() // as Channel.Close does on return: the call carries on
			if (err != nil) != tt.wantErr {
				t.Fatalf("TerminateSession = %v, want error %v", err, tt.wantErr)
			}
			if took > time.Second {
				t.Errorf("TerminateSession took %v: it waited for the answer", took)
			}
			want := int32(1)
			if tt.status == 0 {
				want = 0
			}
			for deadline := time.Now().Add(time.Second); got.Load() != want && time.Now().Before(deadline); {
				time.Sleep(5 * time.Millisecond)
			}
			if got.Load() != want {
				t.Errorf("AWS got %d requests, want %d", got.Load(), want)
			}
		})
	}
}
