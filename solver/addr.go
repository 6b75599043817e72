package solver

import (
	"net/url"
	"strings"
)

// An address may carry credentials in a URL's userinfo
// (tcp://user:password@host:1234). bkcache dials with it, and never
// shows or stores it: errors, warnings, records, summaries and reports
// get the address without it.

// ShownAddr is addr without its userinfo: how bkcache shows and stores
// an address. An ssh:// user without a password is kept: it names an
// account, not a credential, and ssh errors make sense only with it.
func ShownAddr(addr string) string {
	scheme, rest, userinfo := splitUserinfo(addr)
	if userinfo == "" || (scheme == "ssh" && !strings.Contains(userinfo, ":")) {
		return addr
	}
	return scheme + "://" + rest
}

// splitUserinfo cuts addr into its scheme, its userinfo and the rest. It
// does not need addr to parse as a URL: a password with a space is a
// credential all the same.
func splitUserinfo(addr string) (scheme, rest, userinfo string) {
	scheme, after, ok := strings.Cut(addr, "://")
	if !ok {
		return "", addr, ""
	}
	authority, path, _ := strings.Cut(after, "/")
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		return scheme, after, ""
	}
	rest = authority[at+1:]
	if path != "" || strings.HasSuffix(after, "/") {
		rest += "/" + path
	}
	return scheme, rest, authority[:at]
}

// scrub removes addr's userinfo, and every spelling of it, from msg.
func scrub(msg, addr string) string {
	_, _, userinfo := splitUserinfo(addr)
	if userinfo == "" || ShownAddr(addr) == addr {
		return msg
	}
	msg = strings.ReplaceAll(msg, addr, ShownAddr(addr))
	secrets := []string{userinfo}
	if u, err := url.PathUnescape(userinfo); err == nil {
		secrets = append(secrets, u)
	}
	for _, s := range secrets {
		if _, pw, ok := strings.Cut(s, ":"); ok && pw != "" {
			secrets = append(secrets, pw)
		}
	}
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, "***")
	}
	return msg
}

// scrubbedError is an error whose text has lost an address's userinfo.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// scrubErr returns err with addr's userinfo scrubbed from its text.
func scrubErr(err error, addr string) error {
	if err == nil {
		return nil
	}
	if msg := scrub(err.Error(), addr); msg != err.Error() {
		return &scrubbedError{msg: msg, err: err}
	}
	return err
}
