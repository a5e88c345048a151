package cli

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shoalml/shoal/internal/demodata"
)

func (p *program) demoDataCmd() *cobra.Command {
	o := demodata.Options{}
	cmd := &cobra.Command{
		Use:   "demo-data [--out DIR] [--full] [--source DIR]",
		Short: "Write the offline Fashion-MNIST demo tree",
		Long: `Writes Fashion-MNIST (Zalando Research, MIT) as PNG files laid out split/Label/file:
by default the 1,306-image demo (1,045 train, 261 test, 5 classes), with --full all
70,000 images of all 10 classes. Needs Debian's dataset-fashion-mnist package; no network.
Files already there with the same bytes are left alone.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Out == "" {
				return usagef("--out is required")
			}
			sum, err := demodata.Generate(cmd.Context(), o)
			if err != nil {
				return err
			}
			out := p.env.Stdout
			switch {
			case sum.Unchanged == 0:
				fmt.Fprintf(out, "wrote %d images to %s\n", sum.Written, o.Out)
			case sum.Written == 0:
				fmt.Fprintf(out, "%s already holds the %d images; nothing written\n", o.Out, sum.Total)
			default:
				fmt.Fprintf(out, "wrote %d images to %s; %d were there already\n", sum.Written, o.Out, sum.Unchanged)
			}
			keys := make([]string, 0, len(sum.Counts))
			for k := range sum.Counts {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				fmt.Fprintf(out, "  %-24s %6d\n", k, sum.Counts[k])
			}
			if n := len(sum.Extra); n > 0 {
				fmt.Fprintf(out, "%s also holds %d image files this tree does not (%s%s), left by an earlier run with other options; "+
					"an import of the folder imports them too\n", o.Out, n, strings.Join(sum.Extra[:min(n, 3)], ", "), map[bool]string{true: ", ...", false: ""}[n > 3])
			}
			fmt.Fprintf(out, "attribution: %s\n", filepath.Join(o.Out, "NOTICE.md"))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Out, "out", "./data/import/fashion-mnist", "folder to write the tree into")
	f.StringVar(&o.Source, "source", demodata.DefaultSource, "folder with Fashion-MNIST's *-ubyte.gz IDX files")
	f.BoolVar(&o.Full, "full", false, "write all 70,000 images of all 10 classes instead of the 1,306-image demo")
	return cmd
}
