package fallback

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/ec2ssh/ec2ssh/failure"
)

// KMSAPI is the part of KMS a KMS-encrypted session needs.
type KMSAPI interface {
	GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, optFns ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error)
}

// KMSKeyBytes is the data key's size: 64 bytes, split in two. The agent
// encrypts with the first half and the client with the second (the
// session-manager-plugin's encryption package; SSM-DATA-CHANNEL.md).
const KMSKeyBytes = 64

// nonceSize is AES-GCM's: each payload is nonce || sealed bytes.
const nonceSize = 12

// sessionKeys are one session's AES-GCM keys, from the client's side.
type sessionKeys struct {
	cipherText []byte      // the data key as KMS encrypted it, for the agent
	enc, dec   cipher.AEAD // the client's sending and receiving keys
}

// NewSessionKeys splits a 64-byte data key as the side given says: the
// agent encrypts with the first half, the client with the second. The lab's
// agent uses it with agent true.
func newSessionKeys(plain, cipherText []byte, agent bool) (*sessionKeys, error) {
	if len(plain) != KMSKeyBytes {
		return nil, fmt.Errorf("the data key is %d bytes, want %d", len(plain), KMSKeyBytes)
	}
	first, err := gcm(plain[:KMSKeyBytes/2])
	if err != nil {
		return nil, err
	}
	second, err := gcm(plain[KMSKeyBytes/2:])
	if err != nil {
		return nil, err
	}
	if agent {
		return &sessionKeys{cipherText: cipherText, enc: first, dec: second}, nil
	}
	return &sessionKeys{cipherText: cipherText, enc: second, dec: first}, nil
}

func gcm(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func (k *sessionKeys) seal(plain []byte) []byte {
	nonce := make([]byte, nonceSize, nonceSize+len(plain)+k.enc.Overhead())
	rand.Read(nonce)
	return k.enc.Seal(nonce, nonce, plain, nil)
}

func (k *sessionKeys) open(sealed []byte) ([]byte, error) {
	if len(sealed) < nonceSize {
		return nil, errors.New("shorter than a nonce")
	}
	return k.dec.Open(nil, sealed[:nonceSize], sealed[nonceSize:], nil)
}

// AgentKeys is the agent's side of a session's keys, for the lab's agent.
type AgentKeys struct{ k *sessionKeys }

// NewAgentKeys splits a decrypted data key the agent's way.
func NewAgentKeys(plain []byte) (*AgentKeys, error) {
	k, err := newSessionKeys(plain, nil, true)
	if err != nil {
		return nil, err
	}
	return &AgentKeys{k}, nil
}

// Seal encrypts as the agent does.
func (a *AgentKeys) Seal(p []byte) []byte { return a.k.seal(p) }

// Open decrypts what the client sealed.
func (a *AgentKeys) Open(p []byte) ([]byte, error) { return a.k.open(p) }

type kmsOutcome struct {
	keys *sessionKeys
	err  error
}

// prepareKMS generates the session's data key when the handshake request
// asks for KMS encryption. It runs before the channel's lock is taken: it
// is an AWS call.
func (c *Channel) prepareKMS(f *Frame) *kmsOutcome {
	keyID, ok := kmsKeyRequested(f.Payload)
	if !ok {
		return nil
	}
	if c.opts.KMS == nil {
		return &kmsOutcome{err: &failure.Error{Kind: failure.Config, Msg: "the SSM session asks for KMS encryption and no KMS client is set up"}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), CallTimeout)
	defer cancel()
	out, err := c.opts.KMS.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId:         aws.String(keyID),
		NumberOfBytes: aws.Int32(KMSKeyBytes),
		// The agent decrypts the key with this same context.
		EncryptionContext: map[string]string{"aws:ssm:SessionId": c.endpoint.SessionID, "aws:ssm:TargetId": c.opts.TargetID},
	})
	if err != nil {
		return &kmsOutcome{err: classifyKMS(keyID, err)}
	}
	keys, err := newSessionKeys(out.Plaintext, out.CiphertextBlob, false)
	if err != nil {
		return &kmsOutcome{err: &failure.Error{Kind: failure.Unknown, Msg: "kms:GenerateDataKey for the SSM session: " + err.Error()}}
	}
	c.debug("debug1: ssm: the session is encrypted with KMS key %s", keyID)
	return &kmsOutcome{keys: keys}
}

func kmsKeyRequested(payload []byte) (string, bool) {
	req, err := decodeJSON[HandshakeRequestPayload](payload)
	if err != nil {
		return "", false
	}
	for _, a := range req.RequestedClientActions {
		if a.ActionType == ActionKMSEncryption {
			r, err := decodeJSON[KMSEncryptionRequest](a.ActionParameters)
			if err != nil || r.KMSKeyID == "" {
				return "", false
			}
			return r.KMSKeyID, true
		}
	}
	return "", false
}

// classifyKMS turns a KMS error into a *failure.Error where it enters.
func classifyKMS(keyID string, err error) error {
	e := &failure.Error{Kind: failure.Unknown, Op: "kms:GenerateDataKey for the SSM session's encryption", Err: err}
	var notFound *kmstypes.NotFoundException
	var disabled *kmstypes.DisabledException
	var ae smithy.APIError
	switch {
	// KMS models no type for a denial: its code is the one way to know it.
	case errors.As(err, &ae) && (ae.ErrorCode() == "AccessDeniedException" || ae.ErrorCode() == "AccessDenied"):
		e.Kind = failure.AWSAuth
		e.Msg = "the session must be encrypted with KMS key " + keyID + " and the caller may not use it (kms:GenerateDataKey denied)"
		e.Hint = "grant kms:GenerateDataKey on " + keyID + " to the caller's IAM identity (Session Manager preferences require KMS encryption)"
	case errors.As(err, &notFound):
		e.Msg = "the Session Manager preferences name KMS key " + keyID + ", which does not exist"
		e.Hint = "fix the KMS key in the Session Manager preferences (aws ssm update-document --name SSM-SessionManagerRunShell)"
	case errors.As(err, &disabled):
		e.Msg = "KMS key " + keyID + ", required for SSM sessions, is disabled"
		e.Hint = "enable it: aws kms enable-key --key-id " + keyID
	}
	return e
}
