// Package main is policygate's in-process OPA: the pinned OPA (go.mod) as a C shared library
// (`go build -buildmode=c-shared`), bound from Python with ctypes (policygate.engine.inproc).
//
// Every exported function returns a C string of JSON that the caller frees with pg_free; a Go
// panic becomes {"status":500,"body":{"code":"internal_error",...}}, never a crashed process.
// A compiled policy is a handle: its compiler, prepared decision query and in-memory store.
package main

/*
#include <stdlib.h>
*/
import "C"

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/server/types"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/util"
	"github.com/open-policy-agent/opa/v1/version"
)

// options of pg_compile: what `opa run [--bundle] DIR` loads, compiled as policygate's checks do.
type options struct {
	Path         string `json:"path"`
	Bundle       bool   `json:"bundle"`
	Strict       bool   `json:"strict"`
	Capabilities string `json:"capabilities"`
	Query        string `json:"query"`
}

type module struct {
	ID  string      `json:"id"`
	Raw string      `json:"raw"`
	AST *ast.Module `json:"ast"`
}

type policy struct {
	compiler *ast.Compiler
	store    storage.Store
	prepared rego.PreparedEvalQuery
	revision string
	roots    []string // a bundle's roots: data under them is the bundle's, not writable
	modules  []module
}

var (
	mu       sync.RWMutex
	policies = map[int64]*policy{}
	next     int64
)

func reply(v any) *C.char {
	out, err := json.Marshal(v)
	if err != nil {
		out, _ = json.Marshal(failure(http.StatusInternalServerError, types.NewErrorV1(types.CodeInternal, "cannot encode the answer: %s", err)))
	}
	return C.CString(string(out))
}

func failure(status int, body *types.ErrorV1) map[string]any {
	return map[string]any{"status": status, "body": body}
}

// failed is the answer OPA's server would give for err (server/writer.ErrorAuto).
func failed(err error) map[string]any {
	switch {
	case storage.IsWriteConflictError(err):
		return failure(http.StatusNotFound, types.NewErrorV1(types.CodeResourceConflict, "%s", err.Error()))
	case topdown.IsError(err):
		return failure(http.StatusInternalServerError, types.NewErrorV1(types.CodeInternal, types.MsgEvaluationError).WithError(err))
	case storage.IsInvalidPatch(err):
		return failure(http.StatusBadRequest, types.NewErrorV1(types.CodeInvalidParameter, "%s", err.Error()))
	case storage.IsNotFound(err):
		return failure(http.StatusNotFound, types.NewErrorV1(types.CodeResourceNotFound, "%s", err.Error()))
	}
	var astErrs ast.Errors
	if errors.As(err, &astErrs) {
		return failure(http.StatusBadRequest, types.NewErrorV1(types.CodeInvalidParameter, types.MsgCompileModuleError).WithASTErrors(astErrs))
	}
	return failure(http.StatusInternalServerError, types.NewErrorV1(types.CodeInternal, "%s", err.Error()))
}

// guard turns a panic into an error answer.
func guard(out **C.char) {
	if r := recover(); r != nil {
		*out = reply(failure(http.StatusInternalServerError, types.NewErrorV1("internal_panic", "OPA panicked: %v\n%s", r, debug.Stack())))
	}
}

func lookup(handle C.longlong) (*policy, error) {
	mu.RLock()
	defer mu.RUnlock()
	p, ok := policies[int64(handle)]
	if !ok {
		return nil, fmt.Errorf("no compiled policy %d (released?)", int64(handle))
	}
	return p, nil
}

func load(o options) (map[string]any, []module, string, []string, error) {
	var data map[string]any
	var modules []module
	var roots []string
	revision := ""
	if o.Bundle {
		b, err := bundle.NewCustomReader(bundle.NewDirectoryLoader(o.Path)).
			WithRegoVersion(ast.RegoV1).WithProcessAnnotations(true).WithBaseDir(o.Path).Read()
		if err != nil {
			return nil, nil, "", nil, err
		}
		data, revision = b.Data, b.Manifest.Revision
		if b.Manifest.Roots != nil {
			roots = *b.Manifest.Roots
		}
		for _, m := range b.Modules {
			modules = append(modules, module{ID: m.Path, Raw: string(m.Raw), AST: m.Parsed})
		}
	} else {
		r, err := loader.NewFileLoader().WithRegoVersion(ast.RegoV1).WithProcessAnnotation(true).
			Filtered([]string{o.Path}, nil) // as `opa run DIR` loads it (no --ignore)
		if err != nil {
			return nil, nil, "", nil, err
		}
		data = r.Documents
		for _, f := range r.Modules {
			modules = append(modules, module{ID: f.Name, Raw: string(f.Raw), AST: f.Parsed})
		}
	}
	if data == nil {
		data = map[string]any{}
	}
	return data, modules, revision, roots, nil
}

//export pg_compile
func pg_compile(opts *C.char) (out *C.char) {
	defer guard(&out)
	var o options
	if err := util.UnmarshalJSON([]byte(C.GoString(opts)), &o); err != nil {
		return reply(failed(err))
	}
	if o.Query == "" {
		o.Query = "data.policygate.decision"
	}
	data, modules, revision, roots, err := load(o)
	if err != nil {
		return reply(failed(err))
	}
	parsed := map[string]*ast.Module{}
	for _, m := range modules {
		parsed[m.ID] = m.AST
	}
	caps := ast.CapabilitiesForThisVersion()
	if o.Capabilities != "" {
		if caps, err = ast.LoadCapabilitiesFile(o.Capabilities); err != nil {
			return reply(failed(err))
		}
	}
	compiler := ast.NewCompiler().WithStrict(o.Strict).WithCapabilities(caps).
		WithEnablePrintStatements(false).WithDefaultRegoVersion(ast.RegoV1)
	if compiler.Compile(parsed); compiler.Failed() {
		return reply(failed(compiler.Errors))
	}
	store := inmem.NewFromObject(data)
	prepared, err := rego.New(
		rego.Query(o.Query), rego.Compiler(compiler), rego.Store(store), rego.StrictBuiltinErrors(true),
		rego.StackTraces(true), // as the OPA server: an error names the rule it happened in
	).PrepareForEval(context.Background())
	if err != nil {
		return reply(failed(err))
	}
	mu.Lock()
	next++
	handle := next
	policies[handle] = &policy{compiler, store, prepared, revision, roots, modules}
	mu.Unlock()
	return reply(map[string]any{"handle": handle, "revision": revision, "version": version.Version, "modules": len(modules)})
}

func parseInput(raw []byte) (ast.Value, error) {
	var input any
	dec := util.NewJSONDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&input); err != nil {
		return nil, types.BadRequestErr(fmt.Sprintf("body contains malformed input document: %s", err))
	}
	return ast.InterfaceToValue(input)
}

func answer(rs rego.ResultSet, p *policy, m metrics.Metrics) map[string]any {
	out := map[string]any{
		"provenance": map[string]any{"version": version.Version, "bundles": map[string]any{}},
		"metrics":    m.All(),
	}
	if p.revision != "" {
		out["provenance"] = map[string]any{"version": version.Version, "bundles": map[string]any{"policygate": map[string]any{"revision": p.revision}}}
	}
	if len(rs) > 0 && len(rs[0].Expressions) > 0 {
		out["result"] = rs[0].Expressions[0].Value
	}
	return out
}

//export pg_eval
func pg_eval(handle C.longlong, input *C.char, size C.int, timeoutMs C.int) (out *C.char) {
	defer guard(&out)
	p, err := lookup(handle)
	if err != nil {
		return reply(failure(http.StatusNotFound, types.NewErrorV1(types.CodeResourceNotFound, "%s", err.Error())))
	}
	return reply(evalOne(p, C.GoBytes(unsafe.Pointer(input), size), int(timeoutMs)))
}

// evalOne is pg_eval's answer for one input (JSON bytes), evaluated under p with its own timeout.
func evalOne(p *policy, raw []byte, timeoutMs int) (out map[string]any) {
	defer func() {
		if r := recover(); r != nil {
			out = failure(http.StatusInternalServerError, types.NewErrorV1("internal_panic", "OPA panicked: %v\n%s", r, debug.Stack()))
		}
	}()
	value, err := parseInput(raw)
	if err != nil {
		return failure(http.StatusBadRequest, types.NewErrorV1(types.CodeInvalidParameter, "%s", err.Error()))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(timeoutMs)*time.Millisecond)
	defer cancel()
	m := metrics.New()
	rs, err := p.prepared.Eval(ctx, rego.EvalParsedInput(value), rego.EvalMetrics(m))
	if err != nil {
		if ctx.Err() != nil {
			return failure(http.StatusGatewayTimeout, types.NewErrorV1("eval_cancel_error", "evaluation exceeded %d ms: %s", timeoutMs, err.Error()))
		}
		return failed(err)
	}
	return answer(rs, p, m)
}

// pg_eval_batch: pg_eval on each document of a JSON array, on up to `workers` goroutines (the
// batch paths, replay and audit: one call per chunk instead of one per document). The answer is
// {"answers": [...]}, one pg_eval answer per document in order; each document has its own timeout,
// and a failure (an evaluation error, a timeout, a panic) is that document's answer only.
//
//export pg_eval_batch
func pg_eval_batch(handle C.longlong, inputs *C.char, size C.int, timeoutMs C.int, workers C.int) (out *C.char) {
	defer guard(&out)
	p, err := lookup(handle)
	if err != nil {
		return reply(failure(http.StatusNotFound, types.NewErrorV1(types.CodeResourceNotFound, "%s", err.Error())))
	}
	var docs []json.RawMessage
	if err := json.Unmarshal(C.GoBytes(unsafe.Pointer(inputs), size), &docs); err != nil {
		return reply(failure(http.StatusBadRequest, types.NewErrorV1(types.CodeInvalidParameter, "the batch is not a JSON array of documents: %s", err.Error())))
	}
	answers := make([]map[string]any, len(docs))
	n := min(max(int(workers), 1), max(len(docs), 1))
	var wg sync.WaitGroup
	jobs := make(chan int)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				answers[i] = evalOne(p, docs[i], int(timeoutMs))
			}
		}()
	}
	for i := range docs {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return reply(map[string]any{"answers": answers})
}

//export pg_query
func pg_query(handle C.longlong, query *C.char, input *C.char, size C.int, timeoutMs C.int) (out *C.char) {
	defer guard(&out)
	p, err := lookup(handle)
	if err != nil {
		return reply(failure(http.StatusNotFound, types.NewErrorV1(types.CodeResourceNotFound, "%s", err.Error())))
	}
	opts := []func(*rego.Rego){rego.Query(C.GoString(query)), rego.Compiler(p.compiler), rego.Store(p.store), rego.StrictBuiltinErrors(true), rego.StackTraces(true)}
	if size >= 0 {
		value, err := parseInput(C.GoBytes(unsafe.Pointer(input), size))
		if err != nil {
			return reply(failure(http.StatusBadRequest, types.NewErrorV1(types.CodeInvalidParameter, "%s", err.Error())))
		}
		opts = append(opts, rego.ParsedInput(value))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(timeoutMs)*time.Millisecond)
	defer cancel()
	rs, err := rego.New(opts...).Eval(ctx)
	if err != nil {
		return reply(failed(err))
	}
	result := []map[string]any{}
	for _, r := range rs {
		result = append(result, r.Bindings)
	}
	return reply(map[string]any{"result": result})
}

func storePath(raw string) (storage.Path, error) {
	path, ok := storage.ParsePathEscaped("/" + strings.Trim(raw, "/"))
	if !ok {
		return nil, types.BadRequestErr("invalid data path " + raw)
	}
	return path, nil
}

// pg_read_data: the data document at path (base and virtual, as GET /v1/data/PATH answers it).
//
//export pg_read_data
func pg_read_data(handle C.longlong, path *C.char, timeoutMs C.int) (out *C.char) {
	defer guard(&out)
	p, err := lookup(handle)
	if err != nil {
		return reply(failure(http.StatusNotFound, types.NewErrorV1(types.CodeResourceNotFound, "%s", err.Error())))
	}
	sp, err := storePath(C.GoString(path))
	if err != nil {
		return reply(failure(http.StatusBadRequest, types.NewErrorV1(types.CodeInvalidParameter, "%s", err.Error())))
	}
	ref := ast.Ref{ast.DefaultRootDocument}
	for _, s := range sp {
		ref = append(ref, ast.StringTerm(s))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(timeoutMs)*time.Millisecond)
	defer cancel()
	m := metrics.New()
	rs, err := rego.New(rego.ParsedQuery(ast.NewBody(ast.NewExpr(ast.NewTerm(ref)))), rego.Compiler(p.compiler),
		rego.Store(p.store), rego.StrictBuiltinErrors(true)).Eval(ctx)
	if err != nil {
		return reply(failed(err))
	}
	return reply(answer(rs, p, m))
}

// pg_write_data: replace the document at path, making its parents (as PUT /v1/data/PATH does).
//
//export pg_write_data
func pg_write_data(handle C.longlong, path *C.char, value *C.char, size C.int) (out *C.char) {
	defer guard(&out)
	p, err := lookup(handle)
	if err != nil {
		return reply(failure(http.StatusNotFound, types.NewErrorV1(types.CodeResourceNotFound, "%s", err.Error())))
	}
	sp, err := storePath(C.GoString(path))
	if err != nil || len(sp) == 0 {
		return reply(failure(http.StatusBadRequest, types.NewErrorV1(types.CodeInvalidParameter, "invalid data path %q", C.GoString(path))))
	}
	for _, root := range p.roots { // as the server refuses: PUT into a bundle's data
		at, owned := strings.Join(sp, "/")+"/", strings.Trim(root, "/")+"/"
		if owned == "/" || strings.HasPrefix(at, owned) || strings.HasPrefix(owned, at) {
			return reply(failure(http.StatusBadRequest, types.NewErrorV1(types.CodeInvalidParameter,
				"path %s is owned by bundle %q", strings.Join(sp, "/"), "policygate")))
		}
	}
	var doc any
	if err := util.NewJSONDecoder(bytes.NewReader(C.GoBytes(unsafe.Pointer(value), size))).Decode(&doc); err != nil {
		return reply(failure(http.StatusBadRequest, types.NewErrorV1(types.CodeInvalidParameter, "%s", err.Error())))
	}
	ctx := context.Background()
	txn, err := p.store.NewTransaction(ctx, storage.WriteParams)
	if err != nil {
		return reply(failed(err))
	}
	if err := storage.MakeDir(ctx, p.store, txn, sp[:len(sp)-1]); err != nil {
		p.store.Abort(ctx, txn)
		return reply(failed(err))
	}
	if err := p.store.Write(ctx, txn, storage.AddOp, sp, doc); err != nil {
		p.store.Abort(ctx, txn)
		return reply(failed(err))
	}
	if err := p.store.Commit(ctx, txn); err != nil {
		return reply(failed(err))
	}
	return reply(map[string]any{})
}

// pg_policies: the modules, as GET /v1/policies lists them (id, raw, ast with annotations).
//
//export pg_policies
func pg_policies(handle C.longlong) (out *C.char) {
	defer guard(&out)
	p, err := lookup(handle)
	if err != nil {
		return reply(failure(http.StatusNotFound, types.NewErrorV1(types.CodeResourceNotFound, "%s", err.Error())))
	}
	astOptions.RLock() // never while pg_parse marshals with locations
	defer astOptions.RUnlock()
	return reply(map[string]any{"result": p.modules})
}

// pg_info: what the library is (the OPA version) and what a handle holds (its revision).
//
//export pg_info
func pg_info(handle C.longlong) (out *C.char) {
	defer guard(&out)
	info := map[string]any{"version": version.Version}
	if p, err := lookup(handle); err == nil {
		info["revision"] = p.revision
		info["modules"] = len(p.modules)
	}
	return reply(info)
}

//export pg_release
func pg_release(handle C.longlong) {
	mu.Lock()
	delete(policies, int64(handle))
	mu.Unlock()
}

// pg_gc_percent sets the collector's target (debug.SetGCPercent) and returns the previous one.
// GOGC in the environment cannot do it reliably: a c-shared runtime reads the environment the
// process started with, not the one Python has when it loads the library.
//
//export pg_gc_percent
func pg_gc_percent(percent C.int) C.int {
	return C.int(debug.SetGCPercent(int(percent)))
}

//export pg_free
func pg_free(p *C.char) {
	C.free(unsafe.Pointer(p))
}

func main() {}
