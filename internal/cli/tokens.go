package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	authpb "github.com/shoalml/shoal/gen/shoal/auth/v1"
	"github.com/shoalml/shoal/internal/auth"
)

func (p *program) tokensCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "Create, list and revoke API tokens (admin scope)",
		Long: `API tokens carry scopes: predict (inference), read (get, list, watch), write
(import, upload, snapshot, train, cancel, upload and promote versions) and
admin (tokens, the audit trail, deletions). A token's secret is shown once,
when it is created; send it as --token, SHOAL_TOKEN, or the HTTP header
'Authorization: Bearer <token>'.`,
	}
	cmd.AddCommand(p.tokensCreateCmd(), p.tokensListCmd(), p.tokensRevokeCmd())
	return cmd
}

func (p *program) withAuth(cmd *cobra.Command, fn func(context.Context, authpb.AuthServiceClient) error) error {
	return p.conn.call(cmd.Context(), quickTimeout, func(ctx context.Context, conn *grpc.ClientConn) error {
		return fn(ctx, authpb.NewAuthServiceClient(conn))
	})
}

func (p *program) tokensCreateCmd() *cobra.Command {
	var name, scopes, expires string
	cmd := &cobra.Command{
		Use:   "create --name NAME --scope read,write [--expires 30d]",
		Short: "Create a token and print its secret (shown this once)",
		Args:  exactArgs(0),
	}
	out := addOutputFlag(cmd)
	cmd.Flags().StringVar(&name, "name", "", "what the token is for (ci, console, ...)")
	cmd.Flags().StringVar(&scopes, "scope", "", "comma-separated scopes: predict, read, write, admin")
	cmd.Flags().StringVar(&expires, "expires", "", "lifetime, e.g. 12h, 30d; empty: until revoked")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if name == "" {
			return usagef("--name is required: say what the token is for")
		}
		set, err := auth.ParseScopes(scopes)
		if err != nil || set == 0 {
			if err == nil {
				err = fmt.Errorf("at least one of predict, read, write, admin")
			}
			return usagef("--scope: %v", err)
		}
		req := &authpb.CreateTokenRequest{Name: name, Scopes: set.List()}
		if expires != "" {
			d, err := parseLifetime(expires)
			if err != nil {
				return usagef("--expires=%q: %v", expires, err)
			}
			req.Ttl = durationpb.New(d)
		}
		return p.withAuth(cmd, func(ctx context.Context, c authpb.AuthServiceClient) error {
			resp, err := c.CreateToken(ctx, req)
			if err != nil {
				return err
			}
			if out.structured() {
				return out.print(p.env.Stdout, resp)
			}
			t := resp.GetToken()
			fmt.Fprintln(p.env.Stdout, resp.GetSecret())
			fmt.Fprintf(p.env.Stderr, "created token %s (%s) with scopes %s; the secret above is shown this once\n",
				t.GetId(), t.GetName(), auth.ScopesOf(t.GetScopes()...))
			return nil
		})
	}
	return cmd
}

// parseLifetime reads a Go duration or a number of days ("30d").
func parseLifetime(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("want a positive number of days, e.g. 30d")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("want a positive duration, e.g. 12h or 30d")
	}
	return d, nil
}

func (p *program) tokensListCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List tokens, newest first (never their secrets)",
		Args:    exactArgs(0),
	}
	out := addOutputFlag(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "also revoked and expired tokens")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return p.withAuth(cmd, func(ctx context.Context, c authpb.AuthServiceClient) error {
			list := &authpb.ListTokensResponse{}
			req := &authpb.ListTokensRequest{IncludeRevoked: all, PageSize: 1000}
			for {
				resp, err := c.ListTokens(ctx, req)
				if err != nil {
					return err
				}
				list.Tokens = append(list.Tokens, resp.GetTokens()...)
				if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
					break
				}
			}
			if out.structured() {
				return out.print(p.env.Stdout, list)
			}
			return printTokens(p.env.Stdout, list.GetTokens())
		})
	}
	return cmd
}

func printTokens(out io.Writer, tokens []*authpb.Token) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tSCOPES\tCREATED\tLAST USED\tEXPIRES\tSTATE")
	for _, t := range tokens {
		when := func(ts interface {
			IsValid() bool
			AsTime() time.Time
		}) string {
			if !ts.IsValid() {
				return "-"
			}
			return formatTime(ts.AsTime())
		}
		state := "live"
		switch {
		case t.GetRevokeTime().IsValid():
			state = "revoked"
		case t.GetExpireTime().IsValid() && t.GetExpireTime().AsTime().Before(time.Now()):
			state = "expired"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.GetId(), t.GetName(), auth.ScopesOf(t.GetScopes()...),
			when(t.GetCreateTime()), when(t.GetLastUsedTime()), when(t.GetExpireTime()), state)
	}
	return w.Flush()
}

func (p *program) tokensRevokeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "revoke TOKEN_ID",
		Short: "Revoke a token at once (it stops working within --auth.cache-ttl everywhere)",
		Args:  exactArgs(1),
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return p.withAuth(cmd, func(ctx context.Context, c authpb.AuthServiceClient) error {
			resp, err := c.RevokeToken(ctx, &authpb.RevokeTokenRequest{Id: args[0]})
			if err != nil {
				return err
			}
			fmt.Fprintf(p.env.Stdout, "revoked token %s (%s)\n", resp.GetToken().GetId(), resp.GetToken().GetName())
			return nil
		})
	}
	return cmd
}

func (p *program) auditCmd() *cobra.Command {
	var method, token string
	var limit int
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "The audit trail: state-changing calls, newest first (admin scope)",
		Args:  exactArgs(0),
	}
	out := addOutputFlag(cmd)
	cmd.Flags().StringVar(&method, "method", "", "only methods whose name contains this (SetAlias, Delete)")
	cmd.Flags().StringVar(&token, "token-id", "", "only this token's calls")
	cmd.Flags().IntVar(&limit, "limit", 50, "events to list")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return p.withAuth(cmd, func(ctx context.Context, c authpb.AuthServiceClient) error {
			all := &authpb.ListAuditEventsResponse{}
			req := &authpb.ListAuditEventsRequest{Method: method, TokenId: token}
			for len(all.Events) < limit {
				req.PageSize = int32(min(limit-len(all.Events), 1000))
				resp, err := c.ListAuditEvents(ctx, req)
				if err != nil {
					return err
				}
				all.Events = append(all.Events, resp.GetEvents()...)
				if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
					break
				}
			}
			if out.structured() {
				return out.print(p.env.Stdout, all)
			}
			w := tabwriter.NewWriter(p.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "TIME\tTOKEN\tMETHOD\tRESOURCE\tOUTCOME\tREQUEST")
			for _, e := range all.GetEvents() {
				m := e.GetMethod()
				if i := strings.LastIndex(m, "/"); i >= 0 {
					m = m[i+1:]
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", formatTime(e.GetTime().AsTime()), e.GetTokenName(), m,
					dash(e.GetResource()), e.GetCode(), e.GetRequestId())
			}
			return w.Flush()
		})
	}
	return cmd
}
