package sshd

import (
	"regexp"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Console is what cloud-init printed about the VM's host keys on its
// console: the keys themselves and their SHA256 fingerprints.
type Console struct {
	Keys         []string // "type base64", parsed and written anew
	Fingerprints []string // "SHA256:…", of Keys and of the fingerprint lines
}

// The sections cloud-init writes (its write-ssh-key-fingerprints script);
// each line may carry a prefix such as "ec2: " or a kernel timestamp.
const (
	beginFingerprints = "-----BEGIN SSH HOST KEY FINGERPRINTS-----"
	endFingerprints   = "-----END SSH HOST KEY FINGERPRINTS-----"
	beginKeys         = "-----BEGIN SSH HOST KEY KEYS-----"
	endKeys           = "-----END SSH HOST KEY KEYS-----"
)

// maxConsoleKeys bounds what a console (written by the VM's image, which a
// pull request may build) can make the bot keep.
const maxConsoleKeys = 8

var (
	fingerprintRE = regexp.MustCompile(`SHA256:[A-Za-z0-9+/]{43}`)
	keyTypes      = []string{ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521, ssh.KeyAlgoRSA}
)

// ParseConsole reads the host keys and fingerprints in console output.
// Nothing of the text is kept but what parses as a key or a fingerprint.
func ParseConsole(text string) Console {
	var c Console
	section := ""
	for line := range strings.Lines(text) {
		switch {
		case strings.Contains(line, beginFingerprints):
			section = "fingerprints"
			continue
		case strings.Contains(line, beginKeys):
			section = "keys"
			continue
		case strings.Contains(line, endFingerprints), strings.Contains(line, endKeys):
			section = ""
			continue
		}
		switch section {
		case "fingerprints":
			if fp := fingerprintRE.FindString(line); fp != "" {
				c.addFingerprint(fp)
			}
		case "keys":
			if k := keyIn(line); k != nil && len(c.Keys) < maxConsoleKeys {
				if s := AuthorizedKey(k); !slices.Contains(c.Keys, s) {
					c.Keys = append(c.Keys, s)
				}
				c.addFingerprint(ssh.FingerprintSHA256(k))
			}
		}
	}
	return c
}

func (c *Console) addFingerprint(fp string) {
	if !slices.Contains(c.Fingerprints, fp) && len(c.Fingerprints) < 2*maxConsoleKeys {
		c.Fingerprints = append(c.Fingerprints, fp)
	}
}

// keyIn finds a public key in a line, after whatever prefix it has.
func keyIn(line string) ssh.PublicKey {
	for _, typ := range keyTypes {
		i := strings.Index(line, typ+" ")
		if i < 0 {
			continue
		}
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line[i:]))
		if err == nil {
			return k
		}
	}
	return nil
}

// Fingerprint is the SHA256 fingerprint of a key in authorized_keys form,
// or "" when it does not parse.
func Fingerprint(authorized string) string {
	k, err := ParseKey(authorized)
	if err != nil {
		return ""
	}
	return ssh.FingerprintSHA256(k)
}

// ParseKey parses a key in authorized_keys form.
func ParseKey(authorized string) (ssh.PublicKey, error) {
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(authorized))
	return k, err
}
