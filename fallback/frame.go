// Package fallback owns the ways in when port 22 is not: SSM Session
// Manager (its API calls and an in-process data channel), EC2 Instance
// Connect, and the fallback ladder that picks among them. See
// ../shared/SSM-DATA-CHANNEL.md for the protocol facts and the stock
// plugin's defects this code must not inherit.
//
// The data channel's framing is ec2ssh's own, written from the protocol
// (SPEC.md, "SSM"): the session-manager-plugin's message package links a
// logging stack into whatever imports it (seelog, fsnotify, yaml, testify's
// mock) and panics on frames whose header lies about its length. The stock
// plugin stays in the lab as the reference: frame_test.go checks that each
// side decodes the other's frames.
package fallback

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Message types (the 32-byte, space-padded MessageType field).
const (
	InputStreamMessage      = "input_stream_data"
	OutputStreamMessage     = "output_stream_data"
	AcknowledgeMessage      = "acknowledge"
	ChannelClosedMessage    = "channel_closed"
	StartPublicationMessage = "start_publication"
	PausePublicationMessage = "pause_publication"
)

// PayloadType says what a stream frame's payload is.
type PayloadType uint32

const (
	Output               PayloadType = 1
	Error                PayloadType = 2
	Size                 PayloadType = 3
	Parameter            PayloadType = 4
	HandshakeRequest     PayloadType = 5
	HandshakeResponse    PayloadType = 6
	HandshakeComplete    PayloadType = 7
	EncChallengeRequest  PayloadType = 8
	EncChallengeResponse PayloadType = 9
	Flag                 PayloadType = 10
	StdErr               PayloadType = 11
	ExitCode             PayloadType = 12
)

// Flag payloads (PayloadType Flag, a big-endian uint32).
const (
	DisconnectToPort   uint32 = 1
	TerminateSession   uint32 = 2
	ConnectToPortError uint32 = 3
)

// The frame layout: HeaderLength u32 (116: the bytes before PayloadLength)
// | MessageType [32]byte | SchemaVersion u32 | CreatedDate u64 ms |
// SequenceNumber i64 | Flags u64 | MessageId [16]byte (the UUID's two
// 8-byte halves swapped) | SHA-256 of the payload [32]byte | PayloadType
// u32 | PayloadLength u32 | payload. Big-endian throughout.
const (
	headerLength   = 116
	payloadOffset  = headerLength + 4
	typeOffset     = 4
	typeLength     = 32
	versionOffset  = typeOffset + typeLength
	dateOffset     = versionOffset + 4
	seqOffset      = dateOffset + 8
	flagsOffset    = seqOffset + 8
	idOffset       = flagsOffset + 8
	digestOffset   = idOffset + 16
	ptypeOffset    = digestOffset + 32
	plengthOffset  = ptypeOffset + 4
	MaxFrameLength = 1 << 20 // no agent sends more; the WebSocket read limit
)

// Frame is one data channel message.
type Frame struct {
	MessageType    string
	SchemaVersion  uint32
	CreatedDate    uint64 // Unix milliseconds
	SequenceNumber int64
	Flags          uint64
	MessageID      [16]byte // in the UUID's usual byte order
	PayloadType    PayloadType
	Payload        []byte
}

// NewMessageID returns a random (version 4) UUID.
func NewMessageID() [16]byte {
	var id [16]byte
	rand.Read(id[:])
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

// UUIDString formats id as 8-4-4-4-12 hex digits.
func UUIDString(id [16]byte) string {
	h := hex.EncodeToString(id[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Encode serializes f (its digest computed here).
func (f *Frame) Encode() []byte {
	b := make([]byte, payloadOffset+len(f.Payload))
	binary.BigEndian.PutUint32(b, headerLength)
	t := b[typeOffset : typeOffset+typeLength]
	for i := range t {
		t[i] = ' '
	}
	copy(t, f.MessageType)
	binary.BigEndian.PutUint32(b[versionOffset:], f.SchemaVersion)
	binary.BigEndian.PutUint64(b[dateOffset:], f.CreatedDate)
	binary.BigEndian.PutUint64(b[seqOffset:], uint64(f.SequenceNumber))
	binary.BigEndian.PutUint64(b[flagsOffset:], f.Flags)
	copy(b[idOffset:idOffset+8], f.MessageID[8:])
	copy(b[idOffset+8:idOffset+16], f.MessageID[:8])
	sum := sha256.Sum256(f.Payload)
	copy(b[digestOffset:], sum[:])
	binary.BigEndian.PutUint32(b[ptypeOffset:], uint32(f.PayloadType))
	binary.BigEndian.PutUint32(b[plengthOffset:], uint32(len(f.Payload)))
	copy(b[payloadOffset:], f.Payload)
	return b
}

// ErrBadFrame is wrapped by every error Decode returns.
var ErrBadFrame = errors.New("malformed data channel frame")

// Decode parses and checks a frame: its lengths against the bytes that
// came, its type, its date and its digest. A frame that fails is an error
// wrapping ErrBadFrame, never a panic.
func Decode(b []byte) (*Frame, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrBadFrame, fmt.Sprintf(format, a...))
	}
	if len(b) < payloadOffset {
		return nil, bad("%d bytes, shorter than a header", len(b))
	}
	if len(b) > MaxFrameLength {
		return nil, bad("%d bytes, longer than %d", len(b), MaxFrameLength)
	}
	hl := binary.BigEndian.Uint32(b)
	if hl != headerLength {
		return nil, bad("header length %d, want %d", hl, headerLength)
	}
	f := &Frame{
		MessageType:    string(bytes.TrimSpace(bytes.Trim(b[typeOffset:typeOffset+typeLength], "\x00"))),
		SchemaVersion:  binary.BigEndian.Uint32(b[versionOffset:]),
		CreatedDate:    binary.BigEndian.Uint64(b[dateOffset:]),
		SequenceNumber: int64(binary.BigEndian.Uint64(b[seqOffset:])),
		Flags:          binary.BigEndian.Uint64(b[flagsOffset:]),
		PayloadType:    PayloadType(binary.BigEndian.Uint32(b[ptypeOffset:])),
	}
	copy(f.MessageID[8:], b[idOffset:idOffset+8])
	copy(f.MessageID[:8], b[idOffset+8:idOffset+16])
	n := binary.BigEndian.Uint32(b[plengthOffset:])
	if int64(n) != int64(len(b)-payloadOffset) {
		return nil, bad("payload length %d, but %d bytes follow the header", n, len(b)-payloadOffset)
	}
	f.Payload = b[payloadOffset:]
	if f.MessageType == StartPublicationMessage || f.MessageType == PausePublicationMessage {
		return f, nil
	}
	if f.MessageType == "" {
		return nil, bad("no message type")
	}
	if f.CreatedDate == 0 {
		return nil, bad("no creation date")
	}
	if n > 0 {
		if sum := sha256.Sum256(f.Payload); !bytes.Equal(sum[:], b[digestOffset:digestOffset+32]) {
			return nil, bad("payload digest does not match")
		}
	}
	return f, nil
}

// NewFrame is a frame of msgType stamped now with a fresh message id.
func NewFrame(msgType string, seq int64, flags uint64, ptype PayloadType, payload []byte) *Frame {
	return &Frame{MessageType: msgType, SchemaVersion: 1, CreatedDate: uint64(time.Now().UnixMilli()), SequenceNumber: seq,
		Flags: flags, MessageID: NewMessageID(), PayloadType: ptype, Payload: payload}
}

// AckContent is an acknowledgement's JSON payload; only the sequence
// number is used by either side.
type AckContent struct {
	MessageType         string `json:"AcknowledgedMessageType"`
	MessageID           string `json:"AcknowledgedMessageId"`
	SequenceNumber      int64  `json:"AcknowledgedMessageSequenceNumber"`
	IsSequentialMessage bool   `json:"IsSequentialMessage"`
}

// EncodeAck acknowledges f: an "acknowledge" frame, sequence 0, flags 3.
func EncodeAck(f *Frame) []byte {
	content, _ := json.Marshal(AckContent{MessageType: f.MessageType, MessageID: UUIDString(f.MessageID),
		SequenceNumber: f.SequenceNumber, IsSequentialMessage: true})
	return NewFrame(AcknowledgeMessage, 0, 3, 0, content).Encode()
}

// AckedSequence returns the sequence number an acknowledgement names.
func AckedSequence(f *Frame) (int64, error) {
	var c AckContent
	if err := json.Unmarshal(f.Payload, &c); err != nil {
		return 0, fmt.Errorf("%w: acknowledgement: %v", ErrBadFrame, err)
	}
	return c.SequenceNumber, nil
}

// ChannelClosed is the agent's last word on a session.
type ChannelClosed struct {
	MessageID     string `json:"MessageId"`
	CreatedDate   string `json:"CreatedDate"`
	DestinationID string `json:"DestinationId"`
	SessionID     string `json:"SessionId"`
	MessageType   string `json:"MessageType"`
	SchemaVersion int    `json:"SchemaVersion"`
	Output        string `json:"Output"`
}

// Handshake actions the agent may ask of the client.
const (
	ActionSessionType   = "SessionType"
	ActionKMSEncryption = "KMSEncryption"
)

// Action statuses in a handshake response.
const (
	ActionSuccess     = 1
	ActionFailed      = 2
	ActionUnsupported = 3
)

// HandshakeRequestPayload is the agent's first frame.
type HandshakeRequestPayload struct {
	AgentVersion           string                  `json:"AgentVersion"`
	RequestedClientActions []RequestedClientAction `json:"RequestedClientActions"`
}

// RequestedClientAction is one thing the agent asks for.
type RequestedClientAction struct {
	ActionType       string          `json:"ActionType"`
	ActionParameters json.RawMessage `json:"ActionParameters"`
}

// SessionTypeRequest names the session's kind: "Port",
// "Standard_Stream", "InteractiveCommands" or "NonInteractiveCommands".
type SessionTypeRequest struct {
	SessionType string          `json:"SessionType"`
	Properties  json.RawMessage `json:"Properties"`
}

// KMSEncryptionRequest asks the client for a data key under KMSKeyID.
type KMSEncryptionRequest struct {
	KMSKeyID string `json:"KMSKeyId"`
}

// KMSEncryptionResponse carries the data key, encrypted by KMS.
type KMSEncryptionResponse struct {
	KMSCipherTextKey  []byte `json:"KMSCipherTextKey"`
	KMSCipherTextHash []byte `json:"KMSCipherTextHash"`
}

// ProcessedClientAction is the client's answer to one action.
type ProcessedClientAction struct {
	ActionType   string `json:"ActionType"`
	ActionStatus int    `json:"ActionStatus"`
	ActionResult any    `json:"ActionResult"`
	Error        string `json:"Error"`
}

// HandshakeResponsePayload is the client's answer to the handshake.
type HandshakeResponsePayload struct {
	ClientVersion          string                  `json:"ClientVersion"`
	ProcessedClientActions []ProcessedClientAction `json:"ProcessedClientActions"`
	Errors                 []string                `json:"Errors"`
}

// HandshakeCompletePayload ends the handshake.
type HandshakeCompletePayload struct {
	HandshakeTimeToComplete time.Duration `json:"HandshakeTimeToComplete"`
	CustomerMessage         string        `json:"CustomerMessage"`
}

// EncryptionChallenge is the agent's challenge and the client's answer:
// random bytes the client must decrypt and encrypt again with its own key.
type EncryptionChallenge struct {
	Challenge []byte `json:"Challenge"`
}

// SizeData is a terminal size frame's payload.
type SizeData struct {
	Cols uint32 `json:"cols"`
	Rows uint32 `json:"rows"`
}

// FlagPayload encodes a Flag frame's payload.
func FlagPayload(flag uint32) []byte { return binary.BigEndian.AppendUint32(nil, flag) }

func decodeJSON[T any](b []byte) (T, error) {
	var v T
	err := json.Unmarshal(b, &v)
	return v, err
}
