package render

import (
	"regexp"
	"testing"
)

// TestCfgStringKeepsTextInOneWord: text that would end the word, the line
// or start a comment or an expansion is escaped, so even text translate
// would refuse stays one double-quoted word.
func TestCfgStringKeepsTextInOneWord(t *testing.T) {
	word := regexp.MustCompile(`^"([A-Za-z0-9 ._:/+=@,\-!%&()*;<>?\[\]^{|}~]|\\x[0-9a-f]{2})*"$`)
	tests := map[string]string{
		"PING\r\n":              `"PING\x0d\x0a"`,
		"+PONG":                 `"+PONG"`,
		"x\"\n    stats enable": `"x\x22\x0a    stats enable"`,
		"${HOME} #":             `"\x24{HOME} \x23"`,
		`\x41`:                  `"\x5cx41"`,
		"a\x00b'":               `"a\x00b\x27"`,
		"":                      `""`,
		"é":                     `"\xc3\xa9"`,
	}
	for in, want := range tests {
		got := cfgString(in)
		if got != want {
			t.Errorf("cfgString(%q) = %s, want %s", in, got, want)
		}
		if !word.MatchString(got) {
			t.Errorf("cfgString(%q) = %s is not one safe word", in, got)
		}
	}
}
