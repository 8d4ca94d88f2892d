// Package fallback owns the ways in when port 22 is not: SSM Session
// Manager (its API calls and an in-process data channel built on the
// session-manager-plugin's message package) and, later, EC2 Instance
// Connect. See ../shared/SSM-DATA-CHANNEL.md for the protocol facts and the
// stock plugin's defects this code must not inherit.
package fallback

import (
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/aws/session-manager-plugin/src/log"
	"github.com/aws/session-manager-plugin/src/message"
	"github.com/twinj/uuid"
)

// quietLog satisfies the plugin's log.T and says nothing: ec2ssh's own
// output rules (stdout carries only the remote's bytes) come first.
type quietLog struct{}

func (quietLog) Tracef(string, ...interface{})          {}
func (quietLog) Debugf(string, ...interface{})          {}
func (quietLog) Infof(string, ...interface{})           {}
func (quietLog) Warnf(string, ...interface{}) error     { return nil }
func (quietLog) Errorf(string, ...interface{}) error    { return nil }
func (quietLog) Criticalf(string, ...interface{}) error { return nil }
func (quietLog) Trace(...interface{})                   {}
func (quietLog) Debug(...interface{})                   {}
func (quietLog) Info(...interface{})                    {}
func (quietLog) Warn(...interface{}) error              { return nil }
func (quietLog) Error(...interface{}) error             { return nil }
func (quietLog) Critical(...interface{}) error          { return nil }
func (quietLog) Flush()                                 {}
func (quietLog) Close()                                 {}
func (q quietLog) WithContext(...string) log.T          { return q }

var nolog log.T = quietLog{}

// Frame is one data channel message, as both sides use it.
type Frame = message.ClientMessage

// EncodeFrame serializes a frame with the given type, sequence number,
// flags and payload (SSM-DATA-CHANNEL.md: a 116-byte big-endian header,
// the payload's SHA-256, then the payload).
func EncodeFrame(msgType string, seq int64, flags uint64, ptype message.PayloadType, payload []byte) ([]byte, error) {
	m := message.ClientMessage{
		MessageType:    msgType,
		SchemaVersion:  1,
		CreatedDate:    uint64(time.Now().UnixMilli()),
		SequenceNumber: seq,
		Flags:          flags,
		MessageId:      uuid.NewV4(),
		PayloadType:    uint32(ptype),
		Payload:        payload,
	}
	return m.SerializeClientMessage(nolog)
}

// DecodeFrame parses and validates (header length, type, date, digest) a
// frame.
func DecodeFrame(b []byte) (*Frame, error) {
	var m message.ClientMessage
	if err := m.DeserializeClientMessage(nolog, b); err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// EncodeAck acknowledges the frame f. It builds the frame itself rather
// than with the plugin's SerializeClientMessageWithAcknowledgeContent,
// which rewrites the uuid package's global format on every call (a data
// race between concurrent channels; go test -race shows it).
func EncodeAck(f *Frame) ([]byte, error) {
	content, err := json.Marshal(message.AcknowledgeContent{
		MessageType: f.MessageType, MessageId: uuidString(f.MessageId), SequenceNumber: f.SequenceNumber, IsSequentialMessage: true})
	if err != nil {
		return nil, err
	}
	m := message.ClientMessage{MessageType: message.AcknowledgeMessage, SchemaVersion: 1, CreatedDate: uint64(time.Now().UnixMilli()),
		SequenceNumber: 0, Flags: 3, MessageId: uuid.NewV4(), Payload: content}
	return m.SerializeClientMessage(nolog)
}

// uuidString formats u as 8-4-4-4-12 hex without the uuid package's global
// format setting.
func uuidString(u uuid.UUID) string {
	if u == nil {
		return ""
	}
	h := hex.EncodeToString(u.Bytes())
	if len(h) != 32 {
		return h
	}
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// AckedSequence returns the sequence number an acknowledge frame names.
func AckedSequence(f *Frame) (int64, error) {
	c, err := f.DeserializeDataStreamAcknowledgeContent(nolog)
	return c.SequenceNumber, err
}
