package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
)

func (p *program) modelsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "models",
		Short: "List, show, upload, promote, prune and delete model versions",
		Long: `Models are named classifiers with ordered labels; each version is an ONNX artifact with
its input spec, metrics and lineage. Aliases (production, staging, ...) point at versions;
Inference serves production.`,
	}
	cmd.AddCommand(p.modelsListCmd(), p.modelsShowCmd(), p.modelsPromoteCmd(), p.modelsUploadCmd(),
		p.modelsRemoveCmd(), p.modelsPruneCmd(), p.modelsAliasCmd(), p.modelsRolloutCmd())
	return cmd
}

// withRegistry runs fn with a Registry client within the command's bound.
func (p *program) withRegistry(cmd *cobra.Command, fn func(context.Context, registrypb.RegistryServiceClient) error) error {
	return p.conn.call(cmd.Context(), modelTimeout, func(ctx context.Context, conn *grpc.ClientConn) error {
		return fn(ctx, registrypb.NewRegistryServiceClient(conn))
	})
}

func (p *program) modelsListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "ls [MODEL]",
		Aliases: []string{"list"},
		Short:   "List models, or the versions of MODEL (those an alias points at first, then newest first)",
		Args:    rangeArgs(0, 1),
	}
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return p.withRegistry(cmd, func(ctx context.Context, c registrypb.RegistryServiceClient) error {
			if len(args) == 0 {
				return modelList(ctx, c, *out, p.env.Stdout)
			}
			return versionList(ctx, c, args[0], *out, p.env.Stdout)
		})
	}
	return cmd
}

func modelList(ctx context.Context, c registrypb.RegistryServiceClient, o output, out io.Writer) error {
	all := &registrypb.ListModelsResponse{}
	for token := ""; ; {
		resp, err := c.ListModels(ctx, &registrypb.ListModelsRequest{PageSize: 200, PageToken: token})
		if err != nil {
			return err
		}
		all.Models = append(all.Models, resp.GetModels()...)
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if o.structured() {
		return o.print(out, all)
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tLATEST\tALIASES\tLABELS\tCREATED")
	for _, m := range all.GetModels() {
		fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%s\n", m.GetName(), m.GetLatestVersion(), formatAliases(m.GetAliases()),
			len(m.GetLabels()), formatTime(m.GetCreateTime().AsTime()))
	}
	return w.Flush()
}

// allVersions lists every version of model, newest first.
func allVersions(ctx context.Context, c registrypb.RegistryServiceClient, model string) ([]*registrypb.Version, error) {
	var all []*registrypb.Version
	for token := ""; ; {
		resp, err := c.ListVersions(ctx, &registrypb.ListVersionsRequest{Model: model, Descending: true, PageSize: 200, PageToken: token})
		if err != nil {
			return nil, err
		}
		all = append(all, resp.GetVersions()...)
		if token = resp.GetNextPageToken(); token == "" {
			return all, nil
		}
	}
}

// versionList shows the versions an alias points at first (they are what is
// served or about to be), then the others, each newest first.
func versionList(ctx context.Context, c registrypb.RegistryServiceClient, model string, o output, out io.Writer) error {
	versions, err := allVersions(ctx, c, model)
	if err != nil {
		return err
	}
	aliased := func(v *registrypb.Version) int { return min(len(v.GetAliases()), 1) }
	slices.SortStableFunc(versions, func(a, b *registrypb.Version) int { return cmp.Compare(aliased(b), aliased(a)) })
	if o.structured() {
		return o.print(out, &registrypb.ListVersionsResponse{Versions: versions})
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "VERSION\tALIASES\tTEST_ACC\tVAL_ACC\tARCHITECTURE\tCREATOR\tSIZE\tCREATED")
	for _, v := range versions {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.GetVersion(), dash(strings.Join(v.GetAliases(), ",")),
			formatMetric(v.GetMetrics().GetTestAccuracy()), formatMetric(v.GetMetrics().GetValAccuracy()),
			dash(v.GetArchitecture()), dash(v.GetCreator()), formatBytes(v.GetArtifact().GetSizeBytes()),
			formatTime(v.GetCreateTime().AsTime()))
	}
	return w.Flush()
}

func (p *program) modelsShowCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show MODEL [VERSION|ALIAS]",
		Short: "Show a model, or one version with its input spec, metrics and lineage",
		Args:  rangeArgs(1, 2),
	}
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return p.withRegistry(cmd, func(ctx context.Context, c registrypb.RegistryServiceClient) error {
			if len(args) == 1 {
				resp, err := c.GetModel(ctx, &registrypb.GetModelRequest{Name: args[0]})
				if err != nil {
					return err
				}
				if out.structured() {
					return out.print(p.env.Stdout, resp)
				}
				return printModel(p.env.Stdout, resp.GetModel())
			}
			req := &registrypb.GetVersionRequest{Model: args[0]}
			if n, err := strconv.ParseInt(args[1], 10, 64); err == nil {
				req.Version = n
			} else {
				req.Alias = args[1]
			}
			resp, err := c.GetVersion(ctx, req)
			if err != nil {
				return err
			}
			if out.structured() {
				return out.print(p.env.Stdout, resp)
			}
			return printVersion(p.env.Stdout, resp.GetVersion())
		})
	}
	return cmd
}

func printModel(out io.Writer, m *registrypb.Model) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "model:\t%s\n", m.GetName())
	fmt.Fprintf(w, "description:\t%s\n", dash(m.GetDescription()))
	fmt.Fprintf(w, "labels:\t%s\n", strings.Join(m.GetLabels(), ", "))
	fmt.Fprintf(w, "latest version:\t%d\n", m.GetLatestVersion())
	fmt.Fprintf(w, "aliases:\t%s\n", formatAliases(m.GetAliases()))
	fmt.Fprintf(w, "created:\t%s\n", formatTime(m.GetCreateTime().AsTime()))
	return w.Flush()
}

// formatInput describes an input spec as a person reads it: "NCHW, 1
// channel, 28×28, resize stretch, no normalisation".
func formatInput(in *registrypb.InputSpec) string {
	channels := fmt.Sprintf("%d channels", in.GetChannels())
	if in.GetChannels() == 1 {
		channels = "1 channel"
	}
	parts := []string{strings.TrimPrefix(in.GetLayout().String(), "TENSOR_LAYOUT_"), channels,
		fmt.Sprintf("%d×%d", in.GetHeight(), in.GetWidth()),
		"resize " + strings.ToLower(strings.TrimPrefix(in.GetResizeMode().String(), "RESIZE_MODE_"))}
	if in.GetJpegDecode() == registrypb.JpegDecode_JPEG_DECODE_DCT_SCALED {
		parts = append(parts, "JPEG decode dct-scaled")
	}
	switch {
	case len(in.GetMean()) == 0 && len(in.GetStd()) == 0:
		parts = append(parts, "no normalisation")
	default:
		if len(in.GetMean()) > 0 {
			parts = append(parts, fmt.Sprintf("mean %v", in.GetMean()))
		}
		if len(in.GetStd()) > 0 {
			parts = append(parts, fmt.Sprintf("std %v", in.GetStd()))
		}
	}
	return strings.Join(parts, ", ")
}

func printVersion(out io.Writer, v *registrypb.Version) error {
	in := v.GetInputSpec()
	met := v.GetMetrics()
	lin := v.GetLineage()
	output := " (logits)"
	if in.GetOutputIsProbabilities() {
		output = " (probabilities)"
	}
	rows := [][2]string{
		{"model", v.GetModel()},
		{"version", strconv.FormatInt(v.GetVersion(), 10)},
		{"aliases", dash(strings.Join(v.GetAliases(), ", "))},
		{"labels", strings.Join(v.GetLabels(), ", ")},
		{"architecture", dash(v.GetArchitecture())},
		{"creator", dash(v.GetCreator())},
		{"description", dash(v.GetDescription())},
		{"created", formatTime(v.GetCreateTime().AsTime())},
		{"artifact", fmt.Sprintf("sha256:%s (%s)", v.GetArtifact().GetSha256(), formatBytes(v.GetArtifact().GetSizeBytes()))},
		{"input", formatInput(in)},
		{"tensors", fmt.Sprintf("%s -> %s%s", in.GetInputName(), in.GetOutputName(), output)},
		{"val accuracy / loss", formatMetric(met.GetValAccuracy()) + " / " + formatMetric(met.GetValLoss())},
		{"test accuracy / loss", formatMetric(met.GetTestAccuracy()) + " / " + formatMetric(met.GetTestLoss())},
	}
	if lin.GetDataset() != "" {
		rows = append(rows, [2]string{"dataset", fmt.Sprintf("%s (snapshot %d)", lin.GetDataset(), lin.GetSnapshotVersion())})
	}
	if lin.GetJobId() != "" {
		rows = append(rows, [2]string{"training job", lin.GetJobId()})
	}
	if p := lin.GetParent(); p.GetModel() != "" {
		rows = append(rows, [2]string{"parent", fmt.Sprintf("%s/%d", p.GetModel(), p.GetVersion())})
	}
	keys := make([]string, 0, len(v.GetHyperParameters()))
	for k := range v.GetHyperParameters() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		rows = append(rows, [2]string{"hyper-parameter " + k, v.GetHyperParameters()[k]})
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(w, "%s:\t%s\n", r[0], r[1])
	}
	if pc := met.GetPerClass(); len(pc) > 0 {
		fmt.Fprintln(w, "\nCLASS\tPRECISION\tRECALL\tF1\tSUPPORT")
		for _, c := range pc {
			fmt.Fprintf(w, "%s\t%.3f\t%.3f\t%.3f\t%d\n", c.GetLabel(), c.GetPrecision(), c.GetRecall(), c.GetF1(), c.GetSupport())
		}
	}
	return w.Flush()
}

func (p *program) modelsPromoteCmd() *cobra.Command {
	var alias string
	var wait bool
	cmd := &cobra.Command{
		Use:   "promote MODEL VERSION",
		Short: "Point an alias (--alias, default production) at a version; --wait until every inference replica serves it",
		Long: `Points an alias at a version. Inference replicas that follow the alias load and warm the
version, then swap it in. With --wait the command follows them (WatchRollout), printing each
replica as it turns over, and exits 0 once every replica that follows the alias serves the
version; it exits non-zero naming the replicas that do not and why: 8 when a replica failed to
load it (or none follows the alias), 5 when --timeout (default 10m) passed first.`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := parseVersion(args[1])
			if err != nil {
				return err
			}
			return p.withRegistry(cmd, func(ctx context.Context, c registrypb.RegistryServiceClient) error {
				resp, err := c.SetAlias(ctx, &registrypb.SetAliasRequest{Model: args[0], Alias: alias, Version: v})
				if err != nil {
					return err
				}
				a := resp.GetAlias()
				fmt.Fprintf(p.env.Stdout, "%s@%s -> version %d\n", a.GetModel(), a.GetAlias(), a.GetVersion())
				if !wait {
					return nil
				}
				return p.waitRollout(ctx, c, a.GetModel(), a.GetAlias(), a.GetVersion(), p.conn.bound(modelTimeout))
			})
		},
	}
	cmd.Flags().StringVar(&alias, "alias", "production", "alias to point at the version")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until every inference replica that follows the alias serves the version (bounded by --timeout)")
	return cmd
}

func (p *program) modelsAliasCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alias",
		Short: "List or delete a model's aliases (shoal models promote sets them)",
	}
	ls := &cobra.Command{
		Use:     "ls MODEL",
		Aliases: []string{"list"},
		Short:   "List a model's aliases and the versions they point at",
		Args:    exactArgs(1),
	}
	out := addOutputFlag(ls)
	ls.RunE = func(cmd *cobra.Command, args []string) error {
		return p.withRegistry(cmd, func(ctx context.Context, c registrypb.RegistryServiceClient) error {
			resp, err := c.GetModel(ctx, &registrypb.GetModelRequest{Name: args[0]})
			if err != nil {
				return err
			}
			if out.structured() {
				return out.print(p.env.Stdout, resp)
			}
			aliases := resp.GetModel().GetAliases()
			names := make([]string, 0, len(aliases))
			for a := range aliases {
				names = append(names, a)
			}
			slices.Sort(names)
			w := tabwriter.NewWriter(p.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ALIAS\tVERSION")
			for _, a := range names {
				fmt.Fprintf(w, "%s\t%d\n", a, aliases[a])
			}
			return w.Flush()
		})
	}
	rm := &cobra.Command{
		Use:     "rm MODEL ALIAS",
		Aliases: []string{"delete"},
		Short:   "Delete an alias; the version it pointed at stays (Inference stops serving it if it followed the alias)",
		Args:    exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return p.withRegistry(cmd, func(ctx context.Context, c registrypb.RegistryServiceClient) error {
				if _, err := c.DeleteAlias(ctx, &registrypb.DeleteAliasRequest{Model: args[0], Alias: args[1]}); err != nil {
					return err
				}
				fmt.Fprintf(p.env.Stdout, "deleted alias %s@%s\n", args[0], args[1])
				return nil
			})
		},
	}
	cmd.AddCommand(ls, rm)
	return cmd
}

func (p *program) modelsRemoveCmd() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:     "rm MODEL [VERSION]",
		Aliases: []string{"delete"},
		Short:   "Delete a version (refused while an alias points at it), or a model that has no versions left",
		Args:    rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var v int64
			action := fmt.Sprintf("delete model %q", args[0])
			if len(args) == 2 {
				var err error
				if v, err = parseVersion(args[1]); err != nil {
					return err
				}
				action = fmt.Sprintf("delete version %d of model %q", v, args[0])
			}
			if err := p.env.confirm(yes, action); err != nil {
				return err
			}
			return p.withRegistry(cmd, func(ctx context.Context, c registrypb.RegistryServiceClient) error {
				if v == 0 {
					if _, err := c.DeleteModel(ctx, &registrypb.DeleteModelRequest{Name: args[0]}); err != nil {
						return err
					}
					fmt.Fprintf(p.env.Stdout, "deleted model %s\n", args[0])
					return nil
				}
				if _, err := c.DeleteVersion(ctx, &registrypb.DeleteVersionRequest{Model: args[0], Version: v}); err != nil {
					return err
				}
				fmt.Fprintf(p.env.Stdout, "deleted %s version %d\n", args[0], v)
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "delete without asking")
	return cmd
}

func (p *program) modelsPruneCmd() *cobra.Command {
	var keep int
	var yes, dryRun bool
	cmd := &cobra.Command{
		Use:   "prune MODEL --keep N",
		Short: "Delete old versions: keep the N newest and every version an alias points at",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keep < 0 {
				return usagef("--keep N is required: the number of newest versions to keep (versions an alias points at are always kept)")
			}
			return p.withRegistry(cmd, func(ctx context.Context, c registrypb.RegistryServiceClient) error {
				return p.prune(ctx, c, args[0], keep, yes, dryRun)
			})
		},
	}
	cmd.Flags().IntVar(&keep, "keep", -1, "newest versions to keep")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "delete without asking")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only say which versions would be deleted")
	return cmd
}

// prune deletes the versions of model that are neither among the keep
// newest nor pointed at by an alias, oldest first.
func (p *program) prune(ctx context.Context, c registrypb.RegistryServiceClient, model string, keep int, yes, dryRun bool) error {
	versions, err := allVersions(ctx, c, model)
	if err != nil {
		return err
	}
	var doomed []int64
	for i, v := range versions {
		if i >= keep && len(v.GetAliases()) == 0 {
			doomed = append(doomed, v.GetVersion())
		}
	}
	slices.Sort(doomed)
	if len(doomed) == 0 {
		fmt.Fprintf(p.env.Stdout, "nothing to prune: %s has %s, all among the %d newest or aliased\n", model, count(len(versions), "version"), keep)
		return nil
	}
	list := joinInts(doomed)
	if dryRun {
		fmt.Fprintf(p.env.Stdout, "would delete %s of %s: %s\n", count(len(doomed), "version"), model, list)
		return nil
	}
	if err := p.env.confirm(yes, fmt.Sprintf("delete %s of model %q (%s), keeping the %d newest and the aliased ones", count(len(doomed), "version"), model, list, keep)); err != nil {
		return err
	}
	for _, v := range doomed {
		if _, err := c.DeleteVersion(ctx, &registrypb.DeleteVersionRequest{Model: model, Version: v}); err != nil {
			return err
		}
		fmt.Fprintf(p.env.Stdout, "deleted %s version %d\n", model, v)
	}
	return nil
}
