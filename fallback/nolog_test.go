package fallback

import "github.com/aws/session-manager-plugin/src/log"

// nolog satisfies the plugin's log.T and says nothing.
type nolog struct{}

func (nolog) Tracef(string, ...interface{})          {}
func (nolog) Debugf(string, ...interface{})          {}
func (nolog) Infof(string, ...interface{})           {}
func (nolog) Warnf(string, ...interface{}) error     { return nil }
func (nolog) Errorf(string, ...interface{}) error    { return nil }
func (nolog) Criticalf(string, ...interface{}) error { return nil }
func (nolog) Trace(...interface{})                   {}
func (nolog) Debug(...interface{})                   {}
func (nolog) Info(...interface{})                    {}
func (nolog) Warn(...interface{}) error              { return nil }
func (nolog) Error(...interface{}) error             { return nil }
func (nolog) Critical(...interface{}) error          { return nil }
func (nolog) Flush()                                 {}
func (nolog) Close()                                 {}
func (n nolog) WithContext(...string) log.T          { return n }
