package lab

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
)

// xmlNode is an element of an EC2 query-protocol answer, for the EC2 front
// to change what moto says where moto cannot say it (see front.go). Only
// what those answers use is kept: elements, their attributes, the text of
// leaves.
type xmlNode struct {
	name     string
	attr     []xml.Attr
	children []*xmlNode
	text     string
}

// parseXML reads a document into its root element.
func parseXML(b []byte) (*xmlNode, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	var stack []*xmlNode
	var root *xmlNode
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &xmlNode{name: t.Name.Local, attr: append([]xml.Attr(nil), t.Attr...)}
			if t.Name.Space != "" {
				n.name = t.Name.Space + ":" + t.Name.Local
			}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(t)
			}
		}
	}
	return root, nil
}

// bytes writes the document back, with the XML declaration.
func (n *xmlNode) bytes() []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	n.write(&b)
	return b.Bytes()
}

func (n *xmlNode) write(b *bytes.Buffer) {
	b.WriteString("<" + n.name)
	for _, a := range n.attr {
		name := a.Name.Local
		if a.Name.Space != "" {
			name = a.Name.Space + ":" + name
		}
		b.WriteString(" " + name + `="`)
		xml.EscapeText(b, []byte(a.Value))
		b.WriteString(`"`)
	}
	b.WriteString(">")
	if len(n.children) == 0 {
		xml.EscapeText(b, []byte(n.text))
	}
	for _, c := range n.children {
		c.write(b)
	}
	b.WriteString("</" + n.name + ">")
}

// child is the first child element named name, or nil.
func (n *xmlNode) child(name string) *xmlNode {
	if n == nil {
		return nil
	}
	for _, c := range n.children {
		if c.name == name {
			return c
		}
	}
	return nil
}

// all follows a path of element names down from n and returns every
// element at its end ("item" steps match every item).
func (n *xmlNode) all(path ...string) []*xmlNode {
	cur := []*xmlNode{n}
	for _, step := range path {
		var next []*xmlNode
		for _, c := range cur {
			for _, k := range c.children {
				if k.name == step {
					next = append(next, k)
				}
			}
		}
		cur = next
	}
	return cur
}

// value is the text of the child named name ("" when there is none).
func (n *xmlNode) value(name string) string {
	if c := n.child(name); c != nil {
		return strings.TrimSpace(c.text)
	}
	return ""
}

// set gives the child named name the text v, adding it when missing.
func (n *xmlNode) set(name, v string) {
	if c := n.child(name); c != nil {
		c.text, c.children = v, nil
		return
	}
	n.children = append(n.children, &xmlNode{name: name, text: v})
}
