package app

import (
	"crypto/rsa"
	"fmt"
	"strings"

	"github.com/packit/packit-launch/mdsafe"
	"golang.org/x/crypto/ssh"
)

// minRSABits is the smallest RSA key worth installing.
const minRSABits = 2048

// SSHKey is one of a person's public keys from GitHub.
type SSHKey struct {
	Type        string // ssh-ed25519, ssh-rsa
	Fingerprint string // SHA256:…
	Body        string // "type base64", as the Launch service takes it
}

// noUsableKeyError carries the words for the PR.
type noUsableKeyError struct{ reason string }

func (e *noUsableKeyError) Error() string { return e.reason }

// selectKey picks the key to install: the one whose fingerprint matches
// want, else the first ed25519 key, else the first RSA key of at least
// 2048 bits. The Launch service takes only ed25519 and RSA keys.
func selectKey(user string, authorized []string, want string) (SSHKey, error) {
	var usable []SSHKey
	var seen []string
	for _, line := range authorized {
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			continue
		}
		k := SSHKey{Type: pk.Type(), Fingerprint: ssh.FingerprintSHA256(pk), Body: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk)))}
		seen = append(seen, fmt.Sprintf("`%s` (%s)", k.Fingerprint, describe(pk)))
		if usableKey(pk) {
			usable = append(usable, k)
		}
	}
	if want != "" {
		want = strings.TrimPrefix(want, "SHA256:")
		for _, k := range usable {
			if strings.TrimPrefix(k.Fingerprint, "SHA256:") == want {
				return k, nil
			}
		}
		if len(seen) == 0 {
			return SSHKey{}, noKeys(user)
		}
		return SSHKey{}, &noUsableKeyError{fmt.Sprintf("None of your usable GitHub SSH keys has the fingerprint %s. Your keys: %s. "+
			"Pick one of the ed25519 or RSA (≥ %d bits) keys with `--key`, or leave `--key` out.", mdsafe.Code(want), strings.Join(seen, ", "), minRSABits)}
	}
	for _, typ := range []string{ssh.KeyAlgoED25519, ssh.KeyAlgoRSA} {
		for _, k := range usable {
			if k.Type == typ {
				return k, nil
			}
		}
	}
	if len(seen) > 0 {
		return SSHKey{}, &noUsableKeyError{fmt.Sprintf("None of your GitHub SSH keys can be installed: the Launch service takes ed25519 keys and RSA keys of at least %d bits, and you have %s. "+
			"[Add an ed25519 key](https://docs.github.com/en/authentication/connecting-to-github-with-ssh/adding-a-new-ssh-key-to-your-github-account) to your GitHub account, then comment `/launch` again.",
			minRSABits, strings.Join(seen, ", "))}
	}
	return SSHKey{}, noKeys(user)
}

func noKeys(user string) error {
	return &noUsableKeyError{fmt.Sprintf("Your GitHub account has no public SSH key, so I could not give you access to a VM (I read https://github.com/%s.keys). "+
		"[Add one](https://docs.github.com/en/authentication/connecting-to-github-with-ssh/adding-a-new-ssh-key-to-your-github-account) "+
		"(`ssh-keygen -t ed25519` makes one), then comment `/launch` again.", user)}
}

func usableKey(pk ssh.PublicKey) bool {
	switch pk.Type() {
	case ssh.KeyAlgoED25519:
		return true
	case ssh.KeyAlgoRSA:
		return rsaBits(pk) >= minRSABits
	}
	return false
}

func rsaBits(pk ssh.PublicKey) int {
	cpk, ok := pk.(ssh.CryptoPublicKey)
	if !ok {
		return 0
	}
	rk, ok := cpk.CryptoPublicKey().(*rsa.PublicKey)
	if !ok {
		return 0
	}
	return rk.N.BitLen()
}

func describe(pk ssh.PublicKey) string {
	if pk.Type() == ssh.KeyAlgoRSA {
		return fmt.Sprintf("RSA %d bits", rsaBits(pk))
	}
	return strings.TrimPrefix(pk.Type(), "ssh-")
}
