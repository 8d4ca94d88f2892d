package fallback_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"

	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/lab"
)

// fakeKMS is KMS for one test: data keys it made, and the encryption
// context each was made with (Decrypt must be given the same).
type fakeKMS struct {
	mu    sync.Mutex
	keys  map[string][]byte
	ctxs  map[string]map[string]string
	deny  bool
	calls int
}

func newFakeKMS() *fakeKMS {
	return &fakeKMS{keys: map[string][]byte{}, ctxs: map[string]map[string]string{}}
}

func (k *fakeKMS) GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, _ ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls++
	if k.deny {
		return nil, &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "User is not authorized to perform: kms:GenerateDataKey"}
	}
	plain := make([]byte, *in.NumberOfBytes)
	blob := make([]byte, 48)
	rand.Read(plain)
	rand.Read(blob)
	k.keys[string(blob)] = plain
	k.ctxs[string(blob)] = maps.Clone(in.EncryptionContext)
	return &kms.GenerateDataKeyOutput{CiphertextBlob: blob, Plaintext: plain, KeyId: in.KeyId}, nil
}

func (k *fakeKMS) Decrypt(ctx context.Context, in *kms.DecryptInput, _ ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	plain, ok := k.keys[string(in.CiphertextBlob)]
	if !ok || !maps.Equal(k.ctxs[string(in.CiphertextBlob)], in.EncryptionContext) {
		return nil, &smithy.GenericAPIError{Code: "InvalidCiphertextException", Message: "no such key in this context"}
	}
	return &kms.DecryptOutput{Plaintext: plain}, nil
}

// TestKMSEncryptedSession: the account's preferences require KMS; the
// agent asks for a data key in the handshake, challenges the client, and
// every stream payload is AES-GCM both ways.
func TestKMSEncryptedSession(t *testing.T) {
	t.Parallel()
	keys := newFakeKMS()
	api, srv := standIn(t, lab.SSMOptions{KMSKeyID: "alias/session-key", KMS: keys})
	api.KMS = keys
	port := echoServer(t)
	ch := startPort(t, api, port, false)
	defer ch.Close()
	if !ch.Encrypted {
		t.Fatal("the session is not encrypted although the agent asked for it")
	}
	msg := make([]byte, 256<<10)
	rand.Read(msg)
	go ch.Write(msg)
	got := make([]byte, len(msg))
	ch.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadFull(ch, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo over an encrypted session: %v (equal %v)", err, bytes.Equal(got, msg))
	}
	// The data key was asked for with the session and target as context.
	keys.mu.Lock()
	for _, c := range keys.ctxs {
		if c["aws:ssm:SessionId"] != ch.SessionID() || c["aws:ssm:TargetId"] != testInstance {
			t.Errorf("encryption context %v, want the session id and %s", c, testInstance)
		}
	}
	keys.mu.Unlock()
	if o := srv.Outcomes(); o[lab.OutcomeFailed] != 0 {
		t.Errorf("the agent failed the session: %v", o)
	}
}

func TestKMSDeniedIsAClearError(t *testing.T) {
	t.Parallel()
	keys := newFakeKMS()
	keys.deny = true
	api, _ := standIn(t, lab.SSMOptions{KMSKeyID: "alias/session-key", KMS: keys})
	api.KMS = keys
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := api.StartPort(ctx, testInstance, echoServer(t), false)
	if failure.KindOf(err) != failure.AWSAuth || !strings.Contains(err.Error(), "kms:GenerateDataKey") ||
		!strings.Contains(failure.HintOf(err), "kms:GenerateDataKey") {
		t.Errorf("StartPort with kms:GenerateDataKey denied = %v (hint %q), want AWSAuth naming the permission", err, failure.HintOf(err))
	}
	var fe *failure.Error
	if !errors.As(err, &fe) {
		t.Errorf("%v is not a failure.Error", err)
	}
	_ = fmt.Sprint
}
