package fallback

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/aws/session-manager-plugin/src/message"
	"github.com/twinj/uuid"
)

// The stock plugin's message package is the reference for the framing:
// each side must decode the other's frames, field for field.

func TestFramesMatchTheStockPlugin(t *testing.T) {
	ours := NewFrame(OutputStreamMessage, 42, 0, Output, []byte("hello, agent"))
	b := ours.Encode()
	var theirs message.ClientMessage
	if err := theirs.DeserializeClientMessage(nolog{}, b); err != nil {
		t.Fatalf("the plugin cannot read our frame: %v", err)
	}
	if err := theirs.Validate(); err != nil {
		t.Fatalf("the plugin rejects our frame: %v", err)
	}
	if theirs.MessageType != OutputStreamMessage || theirs.SequenceNumber != 42 || !bytes.Equal(theirs.Payload, ours.Payload) ||
		theirs.PayloadType != uint32(Output) || theirs.HeaderLength != headerLength || theirs.MessageId.String() != UUIDString(ours.MessageID) {
		t.Errorf("the plugin read %+v from our frame", theirs)
	}

	m := message.ClientMessage{MessageType: message.InputStreamMessage, SchemaVersion: 1, CreatedDate: 1700000000000,
		SequenceNumber: 7, Flags: 0, MessageId: uuid.NewV4(), PayloadType: uint32(message.Size), Payload: []byte(`{"cols":80,"rows":24}`)}
	pb, err := m.SerializeClientMessage(nolog{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := Decode(pb)
	if err != nil {
		t.Fatalf("we cannot read the plugin's frame: %v", err)
	}
	if f.MessageType != message.InputStreamMessage || f.SequenceNumber != 7 || f.PayloadType != Size ||
		!bytes.Equal(f.Payload, m.Payload) || UUIDString(f.MessageID) != m.MessageId.String() || f.CreatedDate != 1700000000000 {
		t.Errorf("we read %+v from the plugin's frame", f)
	}
	var sz SizeData
	if json.Unmarshal(f.Payload, &sz) != nil || sz.Cols != 80 {
		t.Errorf("payload %q", f.Payload)
	}

	// An acknowledgement built here is one the plugin understands.
	ack, err := Decode(EncodeAck(f))
	if err != nil {
		t.Fatal(err)
	}
	var pm message.ClientMessage
	pm.DeserializeClientMessage(nolog{}, EncodeAck(f))
	c, err := pm.DeserializeDataStreamAcknowledgeContent(nolog{})
	if err != nil || c.SequenceNumber != 7 || ack.Flags != 3 {
		t.Errorf("the plugin reads our ack as %+v, %v", c, err)
	}
}
