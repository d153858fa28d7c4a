package images

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// Instruction is one Dockerfile instruction, its continuation lines
// joined.
type Instruction struct {
	// Command is the instruction's keyword in upper case (FROM, RUN, ...).
	Command string
	// Args is the rest of the instruction.
	Args string
	// Stage counts the FROM instructions before and at this one, from 1.
	Stage int
	// Line is the instruction's first line in the file.
	Line int
}

// Parse reads the instructions of the Dockerfile at path: comments and
// blank lines dropped, lines ending in a backslash joined with the next.
func Parse(path string) ([]Instruction, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		out   []Instruction
		cur   strings.Builder
		start int
		stage int
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if body, cont := strings.CutSuffix(line, `\`); cont {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		cur.Reset()
		cmd = strings.ToUpper(cmd)
		if cmd == "FROM" {
			stage++
		}
		out = append(out, Instruction{Command: cmd, Args: strings.Join(strings.Fields(args), " "), Stage: stage, Line: start})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if cur.Len() > 0 {
		return nil, fmt.Errorf("%s: the last instruction ends in a line continuation", path)
	}
	return out, nil
}

// FinalStage is the instructions of the last build stage, the image.
func FinalStage(ins []Instruction) []Instruction {
	var out []Instruction
	for _, in := range ins {
		if len(ins) > 0 && in.Stage == ins[len(ins)-1].Stage {
			out = append(out, in)
		}
	}
	return out
}

// Steps splits the shell command of a RUN instruction at "&&".
func Steps(run string) []string {
	var out []string
	for _, s := range strings.Split(run, "&&") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
